// Package netlab is mitmwatch's network-namespace lab: real hosts and real
// third-party interceptors, with the compiled mitmwatch binary run among them
// as a user would run it.
//
// Package lab proves the logic on loopback, in-process. Users trust a
// detector only when it is proven against the middleboxes they meet, and
// those are programs with their own habits: mitmproxy, sslsplit, squid's
// ssl-bump, and haproxy splicing TLS through by SNI without decrypting,
// which only the path gives away. netlab builds, as root, three network namespaces joined by veth
// pairs, all addressed from the benchmarking range 198.18.0.0/15:
//
//	client (the build agent)  ──  router (middleboxes, nftables)  ──[wan: delay]──  internet (origins, DNS)
//	198.18.1.2                 198.18.1.1 | 198.18.2.1               198.18.2.2, 198.19.0.0/16
//
// The client has its own resolv.conf and hosts (through /etc/netns/NAME/, as
// `ip netns exec` expects). The internet namespace holds one address per
// impersonated host (github.com, pypi.org, …) where a TLS origin answers with
// leaves from the lab's stand-in public CA, and a DNS server that answers
// those names. The router forwards between the two and runs the interceptor
// a Scenario chooses: transparent (nftables redirects port 443 to it) or as
// an explicit proxy the client reaches through HTTPS_PROXY.
//
// The origins and the DNS server run inside the process that owns the Lab,
// on sockets opened in the internet namespace; interceptors are child
// processes started with `ip netns exec`, each in its own process group.
// Everything a Lab starts or creates is undone by Close, which also runs
// when setting up failed half-way; namespace names carry a random suffix, so
// a crashed run never blocks the next (see Prune for its leftovers).
//
// A scenario may delay the link between router and internet. The kernels
// this runs on (CI's included) have no netem qdisc, so a fourth namespace,
// "wan", relays the Ethernet frames between two veth ends from user space
// (AF_PACKET sockets) after the delay; see delay.go.
package netlab
