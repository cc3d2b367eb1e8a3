package redact

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
)

// NewHandler returns a slog.Handler that hides secrets in every record
// before passing it to next: the message through [Text]; each attribute
// (also those given to WithAttrs, and inside groups, after LogValuer
// values are resolved) by its value's kind:
//
//   - an attribute whose key is secret ([IsSensitiveName]: "password",
//     "api_key") shows [Marker] whatever its value (an empty string stays);
//   - a string through [Text];
//   - an error through [Text], as a string;
//   - bytes (json.RawMessage too) that hold JSON through [JSON], kept as
//     JSON; other bytes through [Text], as a string;
//   - any other value (maps, structs, slices, a *url.URL) through [Text]
//     as its String method prints it, through [JSON] as json.Marshal
//     encodes it, and through [Text] as fmt's %+v prints it: the first
//     form in which something is hidden is logged (JSON as
//     json.RawMessage, else a string); a value with nothing to hide is
//     logged as it was, so its usual printing stays;
//   - numbers, booleans, times and durations unchanged.
//
// Group keys are not secret names: a group named "auth" keeps its
// attributes, each judged on its own. Enabled, WithGroup and levels are
// next's. The rebound worker wraps its logger with it, so errors logged by
// River, the retry policy, the circuit breakers and the HTTP server show
// no secret the rules recognise.
func NewHandler(next slog.Handler) slog.Handler {
	if h, ok := next.(*handler); ok {
		return h // already redacting
	}
	return &handler{next: next}
}

type handler struct{ next slog.Handler }

func (h *handler) Enabled(ctx context.Context, level slog.Level) bool {
	return h.next.Enabled(ctx, level)
}

func (h *handler) Handle(ctx context.Context, r slog.Record) error {
	out := slog.NewRecord(r.Time, r.Level, Text(r.Message), r.PC)
	r.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(redactAttr(a))
		return true
	})
	return h.next.Handle(ctx, out)
}

func (h *handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	red := make([]slog.Attr, len(attrs))
	for i, a := range attrs {
		red[i] = redactAttr(a)
	}
	return &handler{next: h.next.WithAttrs(red)}
}

func (h *handler) WithGroup(name string) slog.Handler {
	return &handler{next: h.next.WithGroup(name)}
}

// redactAttr returns a with its value's secrets hidden (see [NewHandler]).
func redactAttr(a slog.Attr) slog.Attr {
	v := a.Value.Resolve()
	if v.Kind() == slog.KindGroup {
		attrs := v.Group()
		red := make([]slog.Attr, len(attrs))
		for i, g := range attrs {
			red[i] = redactAttr(g)
		}
		return slog.Attr{Key: a.Key, Value: slog.GroupValue(red...)}
	}
	if IsSensitiveName(a.Key) && !(v.Kind() == slog.KindString && v.String() == "") {
		return slog.String(a.Key, Marker)
	}
	switch v.Kind() {
	case slog.KindString:
		return slog.String(a.Key, Text(v.String()))
	case slog.KindAny:
		return slog.Attr{Key: a.Key, Value: redactAny(v.Any())}
	}
	return slog.Attr{Key: a.Key, Value: v}
}

// redactAny hides the secrets of a KindAny value. A value with none is
// returned as it was, so the handler prints it as usual.
func redactAny(x any) slog.Value {
	switch t := x.(type) {
	case nil:
		return slog.AnyValue(nil)
	case error:
		return slog.StringValue(Text(t.Error())) // slog prints errors by Error() anyway
	case json.RawMessage:
		return redactBytes(x, t)
	case []byte:
		return redactBytes(x, t)
	}
	// As String prints it (the text handler's form) ...
	if st, ok := x.(fmt.Stringer); ok {
		if s := st.String(); Text(s) != s {
			return slog.StringValue(Text(s))
		}
	}
	// ... as the JSON handler does (json.Marshal) ...
	if raw, err := json.Marshal(x); err == nil {
		if red := JSON(raw); hides(string(raw), string(red)) {
			return slog.AnyValue(red)
		}
	}
	// ... and as the text handler does for other values (fmt's %+v).
	if _, ok := x.(fmt.Stringer); !ok {
		if s := fmt.Sprintf("%+v", x); Text(s) != s {
			return slog.StringValue(Text(s))
		}
	}
	return slog.AnyValue(x)
}

// redactBytes hides the secrets of bytes: JSON through [JSON], kept as JSON;
// anything else through [Text], as a string.
func redactBytes(x any, b []byte) slog.Value {
	if json.Valid(b) {
		if red := JSON(b); hides(string(b), string(red)) {
			return slog.AnyValue(red)
		}
		return slog.AnyValue(x)
	}
	if red := Text(string(b)); red != string(b) {
		return slog.StringValue(red)
	}
	return slog.AnyValue(x)
}

// hides reports whether redacted has more markers than orig: [JSON]
// reorders keys, so the texts differ even when nothing was hidden.
func hides(orig, redacted string) bool {
	return strings.Count(redacted, Marker) > strings.Count(orig, Marker)
}
