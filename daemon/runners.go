package daemon

import "github.com/mitmwatch/mitmwatch/check"

// A runner holds connections: the DNS client keeps DoT and DoH connections
// (and their reader goroutines) open across probes. A reload makes a new
// runner; the one it replaces may still be used by probes and a grading
// round in flight, so it is closed when the last of them ends, not at the
// swap and not never: a year of reloads must not leave a year of
// connections behind.

// acquire notes one more probe or grading round using r; d.mu held.
func (d *Daemon) acquire(r *check.Runner) {
	if d.users == nil {
		d.users = map[*check.Runner]int{}
	}
	d.users[r]++
}

// letGo notes that a user of r ended and reports whether r is now unused
// and replaced, so the caller closes it (unlocked); d.mu held.
func (d *Daemon) letGo(r *check.Runner) bool {
	if d.users[r] > 1 {
		d.users[r]--
		return false
	}
	delete(d.users, r)
	return r != d.runner
}

// retire reports whether old, just replaced, can be closed at once: no
// probe uses it; d.mu held. Otherwise the last user's letGo closes it.
func (d *Daemon) retire(old *check.Runner) bool {
	return old != nil && old != d.runner && d.users[old] == 0
}

// closeRunner releases what r keeps open. Called unlocked: closing waits
// for nothing a probe holds, but it has no reason to hold d.mu.
func closeRunner(r *check.Runner) {
	if r != nil && r.DNS != nil && r.DNS.Client != nil {
		r.DNS.Client.Close()
	}
}
