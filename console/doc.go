// Package console is rebound's web console: one server-rendered page per
// question an operator has during an incident, served by every worker pod at
// /console/ behind the admin token.
//
// # Pages
//
//   - Overview (/console/): overall job health, the alerts holding now,
//     breakers by state with the open ones, dead letters by failure class
//     per hour over the last 24 hours (an SVG chart drawn on the server),
//     queue depth.
//   - Dead letters (/console/dlq): filters by kind, class, operation key,
//     status and time; newest first, keyset-paginated by entry ID; bulk
//     retry with a dry-run preview of the exact count, bulk resolve with a
//     required note. An entry (/console/dlq/{id}) shows args and metadata
//     redacted (deadletter.Redact), the attempt timeline (time, class,
//     strategy, delay) and retry / resolve forms.
//   - Breakers (/console/breakers): counts by state, rows by key (keyset),
//     reset and open-for-maintenance after a confirmation page.
//   - Batches (/console/batches): progress and summary.
//   - Alerts (/console/alerts): rules, what holds now, history.
//
// Pages are html/template with the CSS embedded in the binary (no CDN, no
// JavaScript): every page reads and every action works without scripts.
//
// # Security
//
// A login form takes the admin token and sets a session cookie
// (adminauth.Sessions: stateless, "v1.<expiry>.<HMAC-SHA256>" under a key
// derived from the token, so any pod accepts it; HttpOnly, SameSite=Strict,
// path /, Secure over TLS, with Config.SecureCookie, or with
// Config.TrustForwardedProto and X-Forwarded-Proto: https). The token never
// appears in a URL. Every POST but the login carries the session's CSRF
// token (an HMAC of the session) in a hidden field and must come from the
// same origin (Sec-Fetch-Site / Origin when the browser sends them); a POST
// failing either is answered 403 and changes nothing. A wrong token at login
// is a 401 page; more than [LoginFailuresPerMinute] wrong tokens from one
// client address in a minute are refused with 429 for the rest of that
// minute. Without an admin token the console follows adminauth's loopback
// rule: served to loopback clients only, the login a button (the session
// key is then random per process). The same session opens the River UI at
// /riverui/ (see internal/adminui).
package console
