package config

import (
	"errors"
	"io/fs"
	"testing"

	"github.com/mitmwatch/mitmwatch"
)

func TestLocate(t *testing.T) {
	t.Parallel()
	const userRules = "/home/lab/.config/mitmwatch/rules.yaml"
	denied := &fs.PathError{Op: "open", Path: SystemPath, Err: fs.ErrPermission}
	tests := []struct {
		name     string
		flag     string
		env      string
		files    map[string]string // path → contents; absent paths do not exist
		readErr  error             // returned for SystemPath when set
		noHome   bool
		wantName string
		wantErr  string
	}{
		{name: "nothing anywhere", wantName: EmbeddedName},
		{name: "user config", files: map[string]string{userRules: "u"}, wantName: userRules},
		{name: "system before user", files: map[string]string{SystemPath: "s", userRules: "u"}, wantName: SystemPath},
		{name: "env before system", env: "/srv/env.yaml", files: map[string]string{"/srv/env.yaml": "e", SystemPath: "s"}, wantName: "/srv/env.yaml"},
		{name: "flag before env", flag: "flag.yaml", env: "/srv/env.yaml", files: map[string]string{"flag.yaml": "f", "/srv/env.yaml": "e"}, wantName: "flag.yaml"},
		{name: "flag must exist", flag: "gone.yaml", files: map[string]string{SystemPath: "s"},
			wantErr: "config named by -config flag: open gone.yaml: file does not exist"},
		{name: "env must exist", env: "/srv/gone.yaml", files: map[string]string{SystemPath: "s"},
			wantErr: "config named by $MITMWATCH_CONFIG: open /srv/gone.yaml: file does not exist"},
		{name: "unreadable system file is not skipped", readErr: denied, files: map[string]string{userRules: "u"},
			wantErr: "config: open /etc/mitmwatch/rules.yaml: permission denied"},
		{name: "no user config dir", noHome: true, wantName: EmbeddedName},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			opts := LocateOptions{
				Getenv: func(k string) string {
					if k == EnvVar {
						return tt.env
					}
					return ""
				},
				ReadFile: func(path string) ([]byte, error) {
					if path == SystemPath && tt.readErr != nil {
						return nil, tt.readErr
					}
					if data, ok := tt.files[path]; ok {
						return []byte(data), nil
					}
					return nil, &fs.PathError{Op: "open", Path: path, Err: fs.ErrNotExist}
				},
				UserConfigDir: func() (string, error) {
					if tt.noHome {
						return "", errors.New("neither $XDG_CONFIG_HOME nor $HOME are defined")
					}
					return "/home/lab/.config", nil
				},
			}
			name, data, err := Locate(tt.flag, opts)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("error:\n got %v\nwant %s", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if name != tt.wantName {
				t.Errorf("name = %q, want %q", name, tt.wantName)
			}
			want := tt.files[tt.wantName]
			if tt.wantName == EmbeddedName {
				want = string(mitmwatch.DefaultRules)
			}
			if string(data) != want {
				t.Errorf("data = %.40q, want %.40q", data, want)
			}
		})
	}
}
