//go:build linux

// Command netlab runs the network-namespace lab by hand, so that a
// contributor can reproduce what the tests see (see ../../README.md):
//
//	netlab scenarios                      list the scenarios
//	netlab up SCENARIO                    build the lab and keep it until SIGINT/SIGTERM or `netlab down`
//	netlab exec [-id ID] -- CMD [ARG...]  run CMD in the client namespace, with the scenario's environment
//	netlab down [-id ID]                  stop a lab started by `netlab up`
//	netlab run [-mitmwatch BIN] SCENARIO  build, run mitmwatch check, compare with the expectation, tear down
//	netlab list                           the labs on this machine
//	netlab prune                          remove what labs whose owner died left behind
//
// It must run as root.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/mitmwatch/mitmwatch/fingerprints"
	"github.com/mitmwatch/mitmwatch/netlab"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	code := 0
	switch cmd, args := os.Args[1], os.Args[2:]; cmd {
	case "scenarios":
		for _, s := range netlab.Scenarios {
			fmt.Printf("%-32s %s\n", s.Name, s.Doc)
		}
	case "up":
		err = up(args)
	case "exec":
		code, err = execIn(args)
	case "down":
		err = down(args)
	case "run":
		code, err = runScenario(args)
	case "list":
		err = list()
	case "prune":
		var ids []string
		ids, err = netlab.Prune()
		for _, id := range ids {
			fmt.Println("pruned", id)
		}
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "netlab:", err)
		os.Exit(1)
	}
	os.Exit(code)
}

func usage() {
	fmt.Fprintln(os.Stderr, `usage: netlab scenarios | up SCENARIO | exec [-id ID] -- CMD [ARG...] | down [-id ID] | run [-mitmwatch BIN] SCENARIO | list | prune`)
	os.Exit(2)
}

// up builds the lab and owns it until a signal: `netlab down` sends SIGTERM.
func up(args []string) error {
	fs := flag.NewFlagSet("up", flag.ExitOnError)
	chains := fs.String("chains", "", "also write the chains the client is presented, as PEM, to this file")
	fs.Parse(args)
	if fs.NArg() != 1 {
		usage()
	}
	s, err := netlab.Find(fs.Arg(0))
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()
	l, err := netlab.Up(s)
	if err != nil {
		return err
	}
	defer func() {
		if err := l.Close(); err != nil {
			fmt.Fprintln(os.Stderr, "netlab: down:", err)
		}
		fmt.Println("netlab: down", l.ID)
	}()
	if *chains != "" {
		if err := writeChains(l, *chains); err != nil {
			return err
		}
	}
	fmt.Printf("netlab: up %s: scenario %s, client namespace %s, files in %s\n", l.ID, s.Name, l.Client, l.Dir)
	fmt.Printf("netlab: client environment: %s\n", strings.Join(l.ClientEnv, " "))
	<-ctx.Done()
	return nil
}

func writeChains(l *netlab.Lab, path string) error {
	chains, err := l.Chains()
	if err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	return errors.Join(netlab.WriteChains(f, chains, netlab.Hosts, l.ChainRoot()), f.Close())
}

// pick finds the live lab to act on: the one with id, or the only one.
func pick(id string) (netlab.LabInfo, error) {
	labs, err := netlab.Records()
	if err != nil {
		return netlab.LabInfo{}, err
	}
	labs = slices.DeleteFunc(labs, func(l netlab.LabInfo) bool { return !l.Live || (id != "" && l.ID != id) })
	switch len(labs) {
	case 1:
		return labs[0], nil
	case 0:
		return netlab.LabInfo{}, errors.New("no lab is up (netlab up SCENARIO)")
	}
	var ids []string
	for _, l := range labs {
		ids = append(ids, l.ID)
	}
	return netlab.LabInfo{}, fmt.Errorf("several labs are up (%s): choose one with -id", strings.Join(ids, ", "))
}

// execIn runs a command in the client namespace with the lab's client
// environment; this program's directory comes first in PATH, so a mitmwatch
// built beside it is found.
func execIn(args []string) (int, error) {
	fs := flag.NewFlagSet("exec", flag.ExitOnError)
	id := fs.String("id", "", "the lab (default: the only one up)")
	fs.Parse(args)
	if fs.NArg() == 0 {
		usage()
	}
	l, err := pick(*id)
	if err != nil {
		return 0, err
	}
	self, err := os.Executable()
	if err != nil {
		return 0, err
	}
	cmd := exec.Command("ip", append([]string{"netns", "exec", l.Client}, fs.Args()...)...)
	cmd.Env = append([]string{"PATH=" + filepath.Dir(self) + ":/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"HOME=" + l.Dir, "TERM=" + os.Getenv("TERM")}, l.ClientEnv...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	err = cmd.Run()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return exit.ExitCode(), nil
	}
	return 0, err
}

// down sends SIGTERM to the owner of the lab and waits until its record
// is gone, then prunes whatever a dead owner left.
func down(args []string) error {
	fs := flag.NewFlagSet("down", flag.ExitOnError)
	id := fs.String("id", "", "the lab (default: the only one up)")
	fs.Parse(args)
	l, err := pick(*id)
	if err != nil {
		return err
	}
	if err := syscall.Kill(l.Owner, syscall.SIGTERM); err != nil {
		return fmt.Errorf("lab %s: owner %d: %w", l.ID, l.Owner, err)
	}
	for i := 0; i < 300; i++ { // 30 s
		if _, err := os.Stat(filepath.Join(netlab.RecordDir, l.ID+".json")); errors.Is(err, os.ErrNotExist) {
			fmt.Println("netlab: down", l.ID)
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	_, err = netlab.Prune()
	return errors.Join(fmt.Errorf("lab %s: its owner (pid %d) did not take it down within 30 s", l.ID, l.Owner), err)
}

// runScenario is one test scenario, by hand: it prints each target's
// verdict and whether the scenario holds.
func runScenario(args []string) (int, error) {
	fs := flag.NewFlagSet("run", flag.ExitOnError)
	bin := fs.String("mitmwatch", "mitmwatch", "the mitmwatch binary to run in the client namespace")
	fs.Parse(args)
	if fs.NArg() != 1 {
		usage()
	}
	s, err := netlab.Find(fs.Arg(0))
	if err != nil {
		return 0, err
	}
	path, err := exec.LookPath(*bin)
	if err != nil {
		return 0, err
	}
	if path, err = filepath.Abs(path); err != nil {
		return 0, err
	}
	l, err := netlab.Up(s)
	if err != nil {
		return 0, err
	}
	defer l.Close()
	r, err := l.Check(path)
	if err != nil {
		return 0, err
	}
	bad := 0
	if r.ExitCode != s.Want.ExitCode {
		fmt.Printf("exit code %d, want %d\n", r.ExitCode, s.Want.ExitCode)
		bad++
	}
	for _, t := range r.Targets {
		mark, timing, missing, w := "ok  ", s.TimingProblem(t), s.Want.MissingReasons(t), s.Want.For(t.Host)
		if t.Verdict != w.Verdict || t.Product != w.Product || t.Path != w.Path || timing != "" || len(missing) > 0 {
			mark = "FAIL"
			bad++
		}
		lack := ""
		if len(missing) > 0 {
			lack = fmt.Sprintf("lacks %v ", missing)
		}
		fmt.Printf("%s %-30s %-12s product=%q path=%s connect=%.1fms handshake=%.1fms findings=%v %s%s\n",
			mark, t.Host, t.Verdict, t.Product, t.Path, t.ConnectMS, t.HandshakeMS, t.Reasons(), lack, timing)
	}
	for _, ic := range r.Interceptors {
		fmt.Printf("interceptor %s (%s) grade %s\n", ic.CASPKI, ic.Path, ic.Grade)
		for _, c := range ic.Checks {
			fmt.Printf("  %-26s %-15s %s\n", c.Check, c.Result, c.Detail)
		}
	}
	for _, p := range s.Want.GradeProblems(l, r) {
		fmt.Printf("FAIL grade: %s\n", p)
		bad++
	}
	if s.Want.Within > 0 {
		fmt.Printf("the check took %v, want under %v\n", r.Elapsed.Round(time.Millisecond), s.Want.Within)
		if r.Elapsed > s.Want.Within {
			bad++
		}
	}
	if s.Want.Verdict != "unreachable" && len(s.Want.Hosts) == 0 {
		chains, err := l.Chains()
		if err != nil {
			return 0, err
		}
		m, _ := fingerprints.IdentifyByBehaviour(chains)
		fmt.Printf("behaviour: %q (%s), want %q\n", m.Product, m.Value, s.Want.Behaviour)
		if m.Product != s.Want.Behaviour {
			bad++
		}
		if l.Interceptor != nil && l.Interceptor.CA == nil {
			if err := l.VerifyGenuine(chains); err != nil {
				fmt.Printf("FAIL %v\n", err)
				bad++
			} else {
				fmt.Println("chains: the origins' own")
			}
		}
	}
	if bad > 0 {
		fmt.Printf("FAIL %s\n", s.Name)
		return 1, nil
	}
	fmt.Printf("PASS %s\n", s.Name)
	return 0, nil
}

func list() error {
	labs, err := netlab.Records()
	if err != nil {
		return err
	}
	for _, l := range labs {
		state := "up"
		if !l.Live {
			state = "dead (netlab prune)"
		}
		fmt.Printf("%s  %-28s client %s  owner %d  %s\n", l.ID, l.Scenario, l.Client, l.Owner, state)
	}
	return nil
}
