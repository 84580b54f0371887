package detector

// ReasonInterceptorAcceptsInvalidUpstream marks a target behind an
// interceptor (approved or not) that re-signs an invalid upstream
// certificate — expired, self-signed, from an untrusted root, for another
// name — with a CA this machine trusts: anyone beyond the interceptor can
// then pose as the host to every tool here. Package grade finds it with
// handshakes to test hosts through the same path; detector only names it.
// It implies no verdict of its own (an approved box stays inspected), but
// it is critical, and `mitmwatch check` exits 1 for it.
const ReasonInterceptorAcceptsInvalidUpstream Reason = "interceptor-accepts-invalid-upstream"
