package passive

import "testing"

// TestFingerprintVectors checks JA3 and JA4 against a browser hello whose
// fingerprints are published (a Chrome ClientHello as a public TLS
// fingerprinting service reports it), with GREASE values added where
// Chrome puts them: they must not count.
func TestFingerprintVectors(t *testing.T) {
	t.Parallel()
	h := &ClientHello{
		LegacyVersion:       771,
		CipherSuites:        []uint16{0x3a3a, 4865, 4866, 4867, 49195, 49199, 49196, 49200, 52393, 52392, 49171, 49172, 156, 157, 47, 53},
		Extensions:          []uint16{0x8a8a, 45, 51, 16, 65037, 23, 17613, 0, 11, 10, 43, 65281, 35, 18, 5, 13, 27, 0x4a4a},
		ServerName:          "tls.example",
		ALPN:                []string{"h2", "http/1.1"},
		SupportedVersions:   []uint16{0x2a2a, 0x0304, 0x0303},
		SupportedGroups:     []uint16{0x1a1a, 4588, 29, 23, 24},
		PointFormats:        []uint8{0},
		SignatureAlgorithms: []uint16{0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601},
	}
	fp := FingerprintsOf(h, nil)
	if want := "771,4865-4866-4867-49195-49199-49196-49200-52393-52392-49171-49172-156-157-47-53,45-51-16-65037-23-17613-0-11-10-43-65281-35-18-5-13-27,4588-29-23-24,0"; fp.JA3Text != want {
		t.Errorf("JA3 text\n got %s\nwant %s", fp.JA3Text, want)
	}
	if want := "98487aa16281980e7d1120d399efb6a4"; fp.JA3 != want {
		t.Errorf("JA3 %s, want %s", fp.JA3, want)
	}
	if want := "t13d1516h2_8daaf6152771_d8a2da3f94cd"; fp.JA4 != want {
		t.Errorf("JA4 %s, want %s", fp.JA4, want)
	}
	if want := "t13d1516h2_002f,0035,009c,009d,1301,1302,1303,c013,c014,c02b,c02c,c02f,c030,cca8,cca9_0005,000a,000b,000d,0012,0017,001b,0023,002b,002d,0033,44cd,fe0d,ff01_0403,0804,0401,0503,0805,0501,0806,0601"; fp.JA4R != want {
		t.Errorf("JA4_r\n got %s\nwant %s", fp.JA4R, want)
	}
	if fp.JA3S != "" || fp.JA4S != "" {
		t.Errorf("server fingerprints without a ServerHello: %+v", fp)
	}
}

func TestJA4Edges(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		h    ClientHello
		want string
	}{
		{ClientHello{LegacyVersion: 0x0301}, "t10i000000_000000000000_000000000000"},
		{ClientHello{LegacyVersion: 0x0303, CipherSuites: []uint16{0x002f}, Extensions: []uint16{0x0000, 0x0010},
			ALPN: []string{"\xab\xcd"}}, "t12d0102ad_" + hash12("002f", false) + "_000000000000"},
		{ClientHello{LegacyVersion: 0x0303, ALPN: []string{"x"}}, "t12i0000xx_000000000000_000000000000"},
	} {
		if got, _ := JA4(&tc.h); got != tc.want {
			t.Errorf("%+v: %s, want %s", tc.h, got, tc.want)
		}
	}
	s := &ServerHello{LegacyVersion: 0x0303, CipherSuite: 0x1301, SupportedVersion: 0x0304, Extensions: []uint16{0x002b, 0x0033}}
	if got, want := JA4S(s), "t130200_1301_"+hash12("002b,0033", false); got != want {
		t.Errorf("JA4S %s, want %s", got, want)
	}
	if got, want := JA3SText(s), "771,4865,43-51"; got != want {
		t.Errorf("JA3S %s, want %s", got, want)
	}
}

func TestGREASE(t *testing.T) {
	t.Parallel()
	n := 0
	for v := range 1 << 16 {
		if isGREASE(uint16(v)) {
			n++
		}
	}
	if n != 16 || !isGREASE(0x0a0a) || !isGREASE(0xfafa) || isGREASE(0x0a1a) {
		t.Errorf("%d GREASE values", n)
	}
}
