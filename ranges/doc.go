// Package ranges keeps the IP ranges that registry and code-hosting providers
// publish, so that a connected or resolved address can be checked against
// where the provider says it lives. An address outside those ranges is only a
// weak signal: providers add ranges before they publish them, and a DNS-based
// proxy is just one explanation among several. It is still cheap evidence that
// needs no pins and no baseline.
//
// The ranges come from each provider's own machine-readable list (see
// [Sources]), parsed by one small parser per format and kept as a dated
// [Snapshot], so a check can say how old its evidence is.
//
// The snapshot shipped inside the binary ([Embedded]) names every provider
// and its official source but holds no ranges: nothing is shipped that was not
// taken from an authoritative copy, and the build machine had none. Ranges
// appear once `mitmwatch ranges update` fetches the lists and saves a
// snapshot; until then [Snapshot.Resolve] says so instead of matching against
// nothing. Run the update from a network you trust: the lists are fetched over
// the very kind of path this tool is meant to distrust.
package ranges
