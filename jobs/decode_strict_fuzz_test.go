package jobs

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"testing"
)

// decodeStrictChecksFirst is decodeStrict as it was written first, checking
// the keys (after a syntax check) before decoding: the reference
// FuzzDecodeStrictMatchesChecksFirst compares it with.
func decodeStrictChecksFirst(raw []byte, v any) error {
	raw = bytes.TrimPrefix(raw, []byte("\xef\xbb\xbf"))
	if err := checkNotNull(raw); err != nil {
		return err
	}
	if err := checkKeys(raw, reflect.TypeOf(v)); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidArgs, err)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			if te.Field == "" {
				return fmt.Errorf("%w: the args must be a JSON object, not %s", ErrInvalidArgs, jsonKind(te.Value))
			}
			if msg, ok := integerMismatch(te); ok {
				return fmt.Errorf("%w: %s %s", ErrInvalidArgs, te.Field, msg)
			}
			return fmt.Errorf("%w: %s must be %s, not %s", ErrInvalidArgs, te.Field, jsonKindOf(te.Type), jsonKind(te.Value))
		}
		return fmt.Errorf("%w: %s", ErrInvalidArgs, decodeErrorMessage(raw, err))
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return fmt.Errorf("%w: unexpected data after the args object", ErrInvalidArgs)
	}
	return nil
}

// decodeStrict, which checks the keys after decoding, refuses exactly what
// the check-first version refused, with the same message, and decodes the
// same args from what both accept, for the args types of the built-in
// kinds, on any input (malformed, trailing data, byte order mark...).
func FuzzDecodeStrictMatchesChecksFirst(f *testing.F) {
	for _, seed := range []string{
		`{"url": "http://a/"}`,
		"\xef\xbb\xbf{\"url\": \"http://a/\"}",
		`{"url": "http://a/"} {"url": "http://b/"}`,
		`{"url": "http://a/"} x`,
		`{"url": "http://a/", "URL": "http://x"}`,
		`{"URL": 5}`,
		`{"url": 5, "url": "x"}`,
		`{"url": "http://a/", "timeout": 3}`,
		`{"url": "http://a/", "headers": {"X": "1", "x": 2}}`,
		`{"url": "http://a/", "body": {"a": 1, "a": 2}, "method": 7}`,
		`{"url": "http://a/"`,
		`{"url": "http://a/", "body": {"a": 1, "a": 2}`,
		`{"n": 1.5, "items": [{"id": 1, "ID": 2}]}`,
		`[1, 2]`,
		`"text"`,
		`null`,
		" null\n",
		`null x`,
		``,
		`  `,
	} {
		f.Add(seed)
	}
	decoders := []func() any{
		func() any { return new(HTTPRequestArgs) },
		func() any { return new(SyntheticArgs) },
		func() any { return new(WeeklyIntelligenceArgs) },
	}
	f.Fuzz(func(t *testing.T, raw string) {
		for _, fresh := range decoders {
			got, want := fresh(), fresh()
			gotErr, wantErr := decodeStrict([]byte(raw), got), decodeStrictChecksFirst([]byte(raw), want)
			if fmt.Sprint(gotErr) != fmt.Sprint(wantErr) {
				t.Fatalf("%T: decodeStrict(%q) = %v, checking first says %v", got, raw, gotErr, wantErr)
			}
			if gotErr == nil && !reflect.DeepEqual(got, want) {
				t.Fatalf("%T: decodeStrict(%q) decoded %+v, checking first %+v", got, raw, got, want)
			}
		}
	})
}
