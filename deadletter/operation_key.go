package deadletter

import (
	"crypto/sha256"
	"encoding/hex"
	"unicode/utf8"
)

// MaxOperationKeyBytes is the longest operation key (in UTF-8 bytes) the
// dead-letter queue stores as it is; a longer one is stored shortened by
// [ShortenOperationKey]. (PostgreSQL's btree index on operation_key cannot
// hold rows much over 2.7 kB: a 6000-character key made the capture fail.)
const MaxOperationKeyBytes = 255

// OperationKeyPrefixBytes is how many leading bytes of a long operation key
// [ShortenOperationKey] keeps (fewer when that would cut a character).
const OperationKeyPrefixBytes = 200

// ShortenOperationKey returns the operation key as the dead-letter queue
// stores it (job_dead_letter_queue.operation_key). A key of at most
// [MaxOperationKeyBytes] bytes (UTF-8) is returned unchanged. A longer one
// becomes:
//
//	P + "…" + H
//
// where P is the longest prefix of whole characters that fits in
// [OperationKeyPrefixBytes] bytes, "…" is U+2026 (3 bytes), and H is the
// first 16 lower-case hex digits of SHA-256 of the whole key's UTF-8 bytes:
// at most 219 bytes, and different long keys stay different. The SQL
// function rebound_dead_letter_shorten(text) that the capture uses
// (migrations/sql/005) implements the same rule; a test holds them equal.
// Filters on operation keys apply it, so the whole key and the stored one
// both find an entry.
func ShortenOperationKey(k string) string {
	if len(k) <= MaxOperationKeyBytes {
		return k
	}
	cut := 0
	for i, r := range k {
		size := utf8.RuneLen(r)
		if r == utf8.RuneError {
			// Invalid UTF-8 counts one byte per bad byte (PostgreSQL text
			// is always valid, so this only matters to Go callers).
			_, size = utf8.DecodeRuneInString(k[i:])
		}
		if i+size > OperationKeyPrefixBytes {
			break
		}
		cut = i + size
	}
	sum := sha256.Sum256([]byte(k))
	return k[:cut] + "…" + hex.EncodeToString(sum[:8])
}
