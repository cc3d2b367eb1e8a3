// Package storable makes text fit for PostgreSQL, where rebound and River
// keep everything: a text column refuses invalid UTF-8 (SQLSTATE 22021) and
// jsonb refuses the escape \u0000 (SQLSTATE 22P05) and unpaired UTF-16
// surrogates (22P02). One such value in a batch that River's completer
// writes fails the whole batch, which River retries without end: no job of
// that pod completes any more. So whatever rebound hands to River or writes
// itself passes through this package first.
//
// It imports nothing of rebound's, so every package may use it — retrypolicy
// and breaker too, which import no other package of the module but this
// leaf. It is public so that job authors and users of retrypolicy can apply
// the same rule to texts of their own.
//
// # The rule
//
// [Text] is the one sanitiser: every NUL byte and every byte that is not part
// of a valid UTF-8 sequence becomes U+FFFD (the Unicode replacement
// character), one per byte, as encoding/json and a for-range loop over a Go
// string read them; then a text longer than its bound is cut at a character
// boundary and ends in "…". Error texts are bounded by [MaxErrorBytes]
// (4 KiB). Text is idempotent and returns a storable input unchanged without
// allocating.
//
// # Errors and panics
//
// [Error] wraps an error whose message breaks the rule: the wrapper's message
// is the sanitised one, and errors.Is, errors.As and errors.AsType see the
// original through it. [Panic] does the same for a panic value, whose text
// (fmt's %v) River stores: the original stays in [PanicValue.Value].
//
// # JSON input
//
// Input is refused, never altered: [CheckJSON] finds the first string (value
// or object key) in a JSON document that PostgreSQL's jsonb would refuse and
// names where it is, e.g.
//
//	args.body.name: contains a NUL character (\u0000), which PostgreSQL cannot store
//
// It reads the raw bytes: encoding/json silently turns invalid UTF-8 into
// U+FFFD and so cannot tell.
package storable
