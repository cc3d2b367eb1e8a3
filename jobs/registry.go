// Package jobs holds rebound's job kinds (one file per kind) and the
// registry that maps a kind's name to what validates its args, names its
// circuit breaker operation key and works it.
//
// # Kinds
//
//   - http_request ([HTTPRequestArgs]): deliver one HTTP request, the
//     webhook / API-call job. A 2xx response is success; any other status is
//     an [*HTTPStatusError] that the retry policy classifies by its
//     StatusCode and RetryAfter methods.
//   - synthetic ([SyntheticArgs]): sleep, fail or panic as the args say,
//     to rehearse outages and measure the queue.
//   - weekly_intelligence ([WeeklyIntelligenceArgs]): fetch one user's
//     report for one ISO week from a reports API (base URL from the
//     workers' config, [WeeklyIntelligenceConfig]) and record it as the
//     job's result; usually enqueued as a batch.
//
// # Operation keys
//
// The circuit breaker gate runs before a job's args are decoded, so every
// kind names its operation key from the raw args JSON ([Kind.OperationKey];
// the default is the kind's name). rebound's producers also stamp the key
// into the job's metadata at insert ([InsertMiddleware]), where the
// dead-letter capture trigger reads it.
package jobs

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/riverqueue/river"
	"github.com/tidwall/gjson"

	"github.com/rebound-queue/rebound/breaker"
	"github.com/rebound-queue/rebound/internal/redact"
	"github.com/rebound-queue/rebound/storable"
)

// MetadataOperationKey is the key in a job's metadata that holds its
// operation key, stamped at insert by [InsertMiddleware] (the same key the
// circuit breaker's gate reads and stamps).
const MetadataOperationKey = breaker.MetadataOperationKey

// Kind describes one job kind.
type Kind struct {
	// Name is the kind as stored in river_job.kind (at least 2 characters).
	Name string

	// Parse decodes and validates raw args JSON, returning the args to
	// insert or an error that names the offending field.
	Parse func(raw []byte) (river.JobArgs, error)

	// OperationKey names the circuit breaker key of a job from its raw args
	// JSON. It must be cheap (it runs on every attempt) and must not fail:
	// malformed args give "". nil means the kind's name.
	OperationKey func(raw []byte) string

	// AddWorker registers the kind's worker in workers, built with deps.
	AddWorker func(workers *river.Workers, deps WorkerDeps) error

	// Args documents the fields of the kind's args for help texts
	// (`enqueue KIND --help`); build it with [ArgsOf]. nil: none listed.
	Args []Arg
}

// WorkerDeps are what kinds' workers may need from the pod.
type WorkerDeps struct {
	// HTTPClient sends outgoing HTTP requests. nil means [NewHTTPClient]'s.
	HTTPClient *http.Client
	// RescueGrace is what a kind with a deadline of its own adds to it to
	// give River the job's timeout (see [DefaultRescueGrace]). 0 means
	// DefaultRescueGrace.
	RescueGrace time.Duration
}

// DefaultRescueGrace is how long, after a job's own deadline, River's
// rescuer still leaves the job alone: 15 s. A kind whose worker knows how
// long a job may take (http_request: timeout_seconds) stops the job itself
// at that deadline and gives River a Timeout of deadline + grace, because
// River's rescuer skips a running job until its kind's Timeout has passed
// since the attempt started, and compares the rescuing pod's clock with
// attempted_at, which PostgreSQL's clock set. The grace covers the
// difference between those clocks and the time to save the job's result,
// so a job still within its deadline is never rescued and run twice.
const DefaultRescueGrace = 15 * time.Second

// AddWorkers registers the worker of every kind in r.
func (r *Registry) AddWorkers(workers *river.Workers, deps WorkerDeps) error {
	for _, name := range r.Names() {
		k := r.kinds[name]
		if k.AddWorker == nil {
			return fmt.Errorf("jobs: kind %q has no worker", name)
		}
		if err := k.AddWorker(workers, deps); err != nil {
			return fmt.Errorf("jobs: add worker of %q: %w", name, err)
		}
	}
	return nil
}

// Registry maps kind names to their [Kind]. The zero value is empty and
// ready to use; it is not safe for concurrent registration (register at
// start-up, read afterwards from any goroutine).
type Registry struct {
	kinds map[string]Kind
}

// UnknownKindError is returned for a kind the registry does not hold. Its
// message lists the known kinds.
type UnknownKindError struct {
	// Kind is the name asked for.
	Kind string
	// Known are the registered kind names, sorted.
	Known []string
}

func (e *UnknownKindError) Error() string {
	return fmt.Sprintf("unknown job kind %q (known kinds: %s)", e.Kind, strings.Join(e.Known, ", "))
}

// ErrInvalidArgs is wrapped by every error a Kind's Parse returns.
var ErrInvalidArgs = errors.New("invalid args")

// Builtin returns a registry holding rebound's own kinds.
func Builtin() *Registry {
	r := &Registry{}
	r.Register(HTTPRequestKind())
	r.Register(SyntheticKind())
	r.Register(WeeklyIntelligenceKind(WeeklyIntelligenceConfig{}))
	return r
}

// Register adds k, replacing a kind of the same name. It panics on a name
// shorter than 2 characters or a nil Parse, which are programming errors.
//
// The registry's Parse (and the Parse of the Kind that [Registry.Lookup]
// returns) first refuses args PostgreSQL cannot store, whatever the kind:
// see [CheckStorableArgs].
func (r *Registry) Register(k Kind) {
	if len(k.Name) < 2 || k.Parse == nil {
		panic(fmt.Sprintf("jobs: kind %q needs a name of 2+ characters and a Parse func", k.Name))
	}
	if r.kinds == nil {
		r.kinds = map[string]Kind{}
	}
	parse := k.Parse
	k.Parse = func(raw []byte) (river.JobArgs, error) {
		if err := CheckStorableArgs(raw); err != nil {
			return nil, err
		}
		return parse(raw)
	}
	r.kinds[k.Name] = k
}

// CheckStorableArgs returns an error wrapping [ErrInvalidArgs] and a
// *storable.JSONError when a string of the args JSON (a value or an object
// key, at any depth) holds what PostgreSQL's jsonb refuses: a NUL (\u0000),
// invalid UTF-8 or an unpaired UTF-16 surrogate escape. The message names
// the field, e.g.
//
//	invalid args: args.body.name: contains a NUL character (\u0000), which PostgreSQL cannot store
//
// It reads the raw bytes, before encoding/json would turn invalid UTF-8
// into U+FFFD. Malformed JSON passes (the kind's Parse reports it).
func CheckStorableArgs(raw []byte) error {
	if err := storable.CheckJSON(raw, "args"); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidArgs, err)
	}
	return nil
}

// Names returns the registered kind names, sorted.
func (r *Registry) Names() []string {
	names := make([]string, 0, len(r.kinds))
	for n := range r.kinds {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// Lookup returns the kind named name, or an [*UnknownKindError].
func (r *Registry) Lookup(name string) (Kind, error) {
	k, ok := r.kinds[name]
	if !ok {
		return Kind{}, &UnknownKindError{Kind: name, Known: r.Names()}
	}
	return k, nil
}

// Parse validates raw args for kind; see [Kind.Parse].
func (r *Registry) Parse(kind string, raw []byte) (river.JobArgs, error) {
	k, err := r.Lookup(kind)
	if err != nil {
		return nil, err
	}
	return k.Parse(raw)
}

// OperationKey returns the circuit breaker key of a job: the operation key
// stamped into its metadata at insert if any, else what its kind extracts
// from the raw args, else the kind's name, through [NormalizeOperationKey].
// It never fails and does no I/O.
func (r *Registry) OperationKey(kind string, rawArgs, metadata []byte) string {
	if key := StampedOperationKey(metadata); key != "" {
		return NormalizeOperationKey(key)
	}
	if k, ok := r.kinds[kind]; ok && k.OperationKey != nil {
		if key := k.OperationKey(rawArgs); key != "" {
			return NormalizeOperationKey(key)
		}
	}
	return NormalizeOperationKey(kind)
}

// MaxOperationKeyLength is the longest operation key kept as it is, in
// characters (Unicode code points), so a key always fits the indexes of
// circuit_breaker_state and job_dead_letter_queue.
const MaxOperationKeyLength = 200

// NormalizeOperationKey returns key unchanged when it has at most
// [MaxOperationKeyLength] characters, and otherwise its first 183
// characters, "…" and the first 16 hex digits of the SHA-256 of the whole
// key: exactly 200 characters, the same for the same key, different for
// keys that differ anywhere. The dead-letter capture applies the same rule
// in SQL.
func NormalizeOperationKey(key string) string {
	if utf8.RuneCountInString(key) <= MaxOperationKeyLength {
		return key
	}
	sum := sha256.Sum256([]byte(key))
	prefix, n := key, 0
	for i := range key {
		if n == MaxOperationKeyLength-17 {
			prefix = key[:i]
			break
		}
		n++
	}
	return prefix + "…" + hex.EncodeToString(sum[:8])
}

// decodeStrict unmarshals raw into v, refusing unknown fields, a key given
// twice in one object (encoding/json would keep the last one silently: a
// second "url" could redirect a job), a field name in another case ("URL"
// for "url": encoding/json would accept it), keys of one object that differ
// only in case (see checkKeys) and trailing data, so a typo such as
// "timeout" for "timeout_seconds" is reported instead of ignored. A UTF-8
// byte order mark in front is skipped.
//
// checkKeys's refusals come first, as if it ran before decoding; it runs
// after, so that raw decoded without error (one JSON value, nothing after
// it) needs no second syntax check (json.Valid) before it.
func decodeStrict(raw []byte, v any) error {
	raw = bytes.TrimPrefix(raw, []byte("\xef\xbb\xbf"))
	if err := checkNotNull(raw); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil {
		if _, err := dec.Token(); !errors.Is(err, io.EOF) {
			return fmt.Errorf("%w: unexpected data after the args object", ErrInvalidArgs)
		}
	}
	if err == nil || json.Valid(raw) {
		if err := checkKeysIn(gjson.ParseBytes(raw), "the args", reflect.TypeOf(v)); err != nil {
			return fmt.Errorf("%w: %v", ErrInvalidArgs, err)
		}
	}
	if err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			// encoding/json names Go types; say it in the args' terms.
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
	return nil
}

// argsQuoteBytes is how much of malformed args an error message quotes.
const argsQuoteBytes = 40

// decodeErrorMessage says what is wrong with args encoding/json could not
// decode, in the terms of someone typing them rather than Go's: what was
// expected, what came (quoted, at most argsQuoteBytes bytes) and where
// (byte counted from 1), e.g.
//
//	not valid JSON: expected a JSON object {...}, got "notjson" (invalid character 'o' at byte 2)
//	not valid JSON: invalid character '}' looking for beginning of object key string at byte 8
//	not valid JSON: it ends before the args object does
func decodeErrorMessage(raw []byte, err error) string {
	trimmed := bytes.TrimSpace(raw)
	if len(trimmed) == 0 {
		return "empty: expected a JSON object {...}"
	}
	var se *json.SyntaxError
	object := trimmed[0] == '{'
	switch {
	case errors.As(err, &se) && object:
		return fmt.Sprintf("not valid JSON: %s at byte %d", se.Error(), se.Offset)
	case errors.As(err, &se):
		// "in literal null (expecting 'u')" speaks of a JSON literal the
		// user never meant to write: keep the character and where.
		what, _, _ := strings.Cut(se.Error(), " in literal ")
		return fmt.Sprintf("not valid JSON: expected a JSON object {...}, got %s (%s at byte %d)", quoteArgs(trimmed), what, se.Offset)
	case errors.Is(err, io.ErrUnexpectedEOF) && object:
		return "not valid JSON: it ends before the args object does"
	case errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Sprintf("not valid JSON: expected a JSON object {...}, got %s (it ends too early)", quoteArgs(trimmed))
	}
	return strings.TrimPrefix(err.Error(), "json: ")
}

// quoteArgs quotes the first argsQuoteBytes bytes of raw, secrets hidden
// (redact.Text), with "…" after the quote when raw is longer.
func quoteArgs(raw []byte) string {
	if len(raw) <= argsQuoteBytes {
		return strconv.Quote(redact.Text(string(raw)))
	}
	cut := argsQuoteBytes
	for cut > 0 && !utf8.RuneStart(raw[cut]) {
		cut--
	}
	return strconv.Quote(redact.Text(string(raw[:cut]))) + "…"
}

// checkNotNull refuses args that are the JSON literal null (with JSON
// whitespace around it), which encoding/json decodes into a struct as
// nothing at all: they would then be refused for a missing field ("url is
// required") instead of for what they are.
func checkNotNull(raw []byte) error {
	if string(bytes.Trim(raw, " \t\r\n")) == "null" {
		return fmt.Errorf("%w: the args must be a JSON object, not null", ErrInvalidArgs)
	}
	return nil
}

// jsonKind names the JSON value kind encoding/json reports ("array",
// "number 5", ...) with an article.
func jsonKind(v string) string {
	switch {
	case strings.HasPrefix(v, "number"):
		return "a number"
	case v == "array" || v == "object":
		return "an " + v
	case v == "":
		return "that value"
	default:
		return "a " + v
	}
}

// integerMismatch words a number that does not fit a number field: for an
// integer field a fraction ("must be a whole number, not 1.5"), a whole
// number written with an exponent or a fraction ("must be written as a
// plain whole number (1000), not 1e3") or one outside the field's range
// ("1e30 is out of range"), for a float
// field a number beyond float64 ("1e400 is out of range"), where "must be a
// number, not a number" would say nothing. ok is false for any other
// mismatch.
func integerMismatch(te *json.UnmarshalTypeError) (msg string, ok bool) {
	lit, isNumber := strings.CutPrefix(te.Value, "number ")
	if !isNumber || te.Type == nil {
		return "", false
	}
	switch te.Type.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
	case reflect.Float32, reflect.Float64:
		return lit + " is out of range", true
	default:
		return "", false
	}
	if f, err := strconv.ParseFloat(lit, 64); err == nil {
		if f != math.Trunc(f) {
			return "must be a whole number, not " + lit, true
		}
		if fitsInteger(te.Type, f) { // 1e3, 42.0: whole and in range, but not written as an integer
			return "must be written as a plain whole number (" + strconv.FormatFloat(f, 'f', -1, 64) + "), not " + lit, true
		}
	}
	return lit + " is out of range", true
}

// fitsInteger reports whether the whole number f is a value of the
// integer type t.
func fitsInteger(t reflect.Type, f float64) bool {
	v := reflect.New(t).Elem()
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return f >= -(1<<63) && f < 1<<63 && !v.OverflowInt(int64(f))
	default: // the unsigned kinds
		return f >= 0 && f < 1<<64 && !v.OverflowUint(uint64(f))
	}
}

// jsonKindOf names what a Go type is in JSON.
func jsonKindOf(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Map, reflect.Struct:
		return "an object"
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 {
			return "JSON" // json.RawMessage takes anything
		}
		return "an array"
	case reflect.Bool:
		return "true or false"
	case reflect.Float32, reflect.Float64, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a number"
	default:
		return t.String()
	}
}

// checkKeys reports, naming its path, the first object key of raw that
// encoding/json would read other than as written: a key given twice in the
// same object; in an object decoded into a struct, a key that is not a field
// name exactly (encoding/json matches names regardless of case, so "URL"
// would silently fill "url"); in an object decoded into a struct or a map, two
// keys that differ only in case (HTTP header names are case-insensitive: one
// of two would be lost). t is the Go type raw is decoded into (nil: not
// checked against a type). Malformed JSON is left for the decoder to report.
func checkKeys(raw []byte, t reflect.Type) error {
	if !json.Valid(raw) {
		return nil // malformed: the decoder says how
	}
	return checkKeysIn(gjson.ParseBytes(raw), "the args", t)
}

// checkKeysIn is checkKeys for the value v (valid JSON) at path, decoded
// into t. It walks v in place (gjson), without encoding/json's tokenizer,
// which cost more than decoding the args.
func checkKeysIn(v gjson.Result, path string, t reflect.Type) error {
	t = decodedType(t)
	var err error
	switch {
	case v.IsObject():
		var fields map[string]reflect.Type
		var elem reflect.Type
		foldCheck := false
		if t != nil {
			switch t.Kind() {
			case reflect.Struct:
				fields, foldCheck = cachedStructFields(t), true
			case reflect.Map:
				elem, foldCheck = t.Elem(), t.Key().Kind() == reflect.String
			}
		}
		// The keys seen so far: in a small array while there are few (no
		// allocation), in maps past smallObjectKeys.
		var (
			small  [smallObjectKeys]seenKey
			keys   = small[:0]
			seen   map[string]bool
			folded map[string]string // lower case -> key as given
		)
		v.ForEach(func(k, value gjson.Result) bool {
			key := k.Str
			var lower string
			if foldCheck {
				lower = strings.ToLower(key)
			}
			if seen == nil && len(keys) == len(small) {
				seen, folded = make(map[string]bool, 2*len(small)), make(map[string]string, 2*len(small))
				for _, p := range keys {
					seen[p.key] = true
					if foldCheck {
						folded[p.lower] = p.key
					}
				}
			}
			if seen == nil {
				for _, p := range keys {
					if p.key == key {
						err = fmt.Errorf("key %q appears twice in %s", key, path)
						return false
					}
				}
				for _, p := range keys {
					if foldCheck && p.lower == lower {
						err = fmt.Errorf("keys %q and %q in %s differ only in case; give one", p.key, key, path)
						return false
					}
				}
				keys = append(keys, seenKey{key: key, lower: lower})
			} else {
				if seen[key] {
					err = fmt.Errorf("key %q appears twice in %s", key, path)
					return false
				}
				seen[key] = true
				if foldCheck {
					if k, ok := folded[lower]; ok {
						err = fmt.Errorf("keys %q and %q in %s differ only in case; give one", k, key, path)
						return false
					}
					folded[lower] = key
				}
			}
			next := elem
			if fields != nil {
				ft, ok := fields[key]
				if !ok {
					for name := range fields {
						if strings.EqualFold(name, key) {
							err = fmt.Errorf("unknown field %q in %s (field names are exact: %q)", key, path, name)
							return false
						}
					}
				}
				next = ft
			}
			if value.IsObject() || value.IsArray() {
				err = checkKeysIn(value, path+"."+key, next)
			}
			return err == nil
		})
	case v.IsArray():
		var elem reflect.Type
		if t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) {
			elem = t.Elem()
		}
		i := 0
		v.ForEach(func(_, value gjson.Result) bool {
			if value.IsObject() || value.IsArray() {
				err = checkKeysIn(value, fmt.Sprintf("%s[%d]", path, i), elem)
			}
			i++
			return err == nil
		})
	}
	return err
}

// smallObjectKeys is how many keys of one object checkKeysIn compares
// one by one before it puts them in maps.
const smallObjectKeys = 8

// seenKey is a key checkKeysIn has seen in an object, and its lower case
// (when the object's keys are checked for case).
type seenKey struct{ key, lower string }

// structFieldsCache maps a struct type to its structFields.
var structFieldsCache sync.Map // reflect.Type -> map[string]reflect.Type

// cachedStructFields is structFields(t), computed once per type.
func cachedStructFields(t reflect.Type) map[string]reflect.Type {
	if f, ok := structFieldsCache.Load(t); ok {
		return f.(map[string]reflect.Type)
	}
	f := structFields(t)
	structFieldsCache.Store(t, f)
	return f
}

var unmarshalerType = reflect.TypeFor[json.Unmarshaler]()

// decodedType is t without pointers, or nil when encoding/json does not
// decode into t field by field (an interface, a json.Unmarshaler such as
// json.RawMessage).
func decodedType(t reflect.Type) reflect.Type {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil || t.Kind() == reflect.Interface || reflect.PointerTo(t).Implements(unmarshalerType) {
		return nil
	}
	return t
}

// structFields maps the JSON names of t's fields, as encoding/json names
// them (the tag's name, else the Go name; fields of untagged embedded
// structs included), to their types.
func structFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for f := range t.Fields() {
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" {
			if et := decodedType(f.Type); et != nil && et.Kind() == reflect.Struct {
				for n, ft := range structFields(et) {
					if _, ok := out[n]; !ok {
						out[n] = ft
					}
				}
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out[name] = f.Type
	}
	return out
}

// ParseKnownFields is [Kind.Parse] of raw (a JSON object) with the keys
// that are not among k.Args left out: the args the kind's worker gets
// from a JSON object with fields of its own, since River decodes args with
// encoding/json, which ignores fields the args struct does not have —
// checked as Parse checks them. It tells whether the kind can run on args
// written for something else, such as a batch's summary handed to a
// callback job (see package batch). raw that is not a JSON object, or a
// kind without Args, is parsed as it is.
func (k Kind) ParseKnownFields(raw []byte) (river.JobArgs, error) {
	var obj map[string]json.RawMessage
	if len(k.Args) == 0 || json.Unmarshal(raw, &obj) != nil || obj == nil {
		return k.Parse(raw)
	}
	known := make(map[string]json.RawMessage, len(k.Args))
	for _, a := range k.Args {
		if v, ok := obj[a.Name]; ok {
			known[a.Name] = v
		}
	}
	filtered, err := json.Marshal(known)
	if err != nil {
		return nil, err
	}
	return k.Parse(filtered)
}
