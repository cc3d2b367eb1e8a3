package deadletter

import (
	"bytes"
	"encoding/json"
	"net/url"
	"regexp"
	"strings"
)

// Redacted replaces a secret in displays.
const Redacted = "[REDACTED]"

// sensitiveWords mark a JSON key, header name or query parameter as secret
// when its lowercased name, without '-' and '_', contains one of them:
// Authorization, Proxy-Authorization, Cookie, Set-Cookie, X-Api-Key, api_key,
// password, token (access_token, ...), secret (client_secret, ...).
var sensitiveWords = []string{"authorization", "cookie", "apikey", "password", "passwd", "token", "secret", "privatekey", "credential"}

// IsSensitiveName reports whether a key, header or parameter name holds a
// secret (see [Redact]).
func IsSensitiveName(name string) bool {
	n := strings.NewReplacer("-", "", "_", "", " ", "").Replace(strings.ToLower(name))
	for _, w := range sensitiveWords {
		if strings.Contains(n, w) {
			return true
		}
	}
	return false
}

// Redact returns a copy of e for display: in args and metadata, the value
// of every key named like a secret (see [IsSensitiveName]; headers such as
// Authorization, Cookie, X-Api-Key; fields such as password, token, secret,
// api_key), every {"name": <secret name>, "value": ...} pair and the password
// and secret query parameters of URLs are replaced by [Redacted]; URLs in
// errors and reasons lose the same. e itself is not changed: [Store.Retry]
// replays the stored args intact. Every display (CLI table and --json, the
// admin HTTP API) goes through Redact.
func Redact(e *Entry) *Entry {
	if e == nil {
		return nil
	}
	c := *e
	c.Args = RedactJSON(e.Args)
	c.Metadata = RedactJSON(e.Metadata)
	c.FailureReason = RedactText(e.FailureReason)
	c.History = make([]Attempt, len(e.History))
	for i, h := range e.History {
		h.Error = RedactText(h.Error)
		c.History[i] = h
	}
	return &c
}

// RedactJSON returns raw with secrets replaced (see [Redact]). Input that
// is not valid JSON is returned as a JSON string saying so, never as is.
func RedactJSON(raw json.RawMessage) json.RawMessage {
	if len(raw) == 0 {
		return raw
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return json.RawMessage(`"[unreadable JSON hidden]"`)
	}
	out, err := json.Marshal(redactValue(v))
	if err != nil {
		return json.RawMessage(`"[unreadable JSON hidden]"`)
	}
	return out
}

func redactValue(v any) any {
	switch t := v.(type) {
	case map[string]any:
		// {"name": "Authorization", "value": "..."} and similar pairs.
		for _, nameKey := range []string{"name", "key", "header"} {
			if n, ok := t[nameKey].(string); ok && IsSensitiveName(n) {
				for _, valueKey := range []string{"value", "values"} {
					if _, ok := t[valueKey]; ok {
						t[valueKey] = Redacted
					}
				}
			}
		}
		for k, val := range t {
			if IsSensitiveName(k) {
				if val != nil {
					t[k] = Redacted
				}
				continue
			}
			t[k] = redactValue(val)
		}
		return t
	case []any:
		for i := range t {
			t[i] = redactValue(t[i])
		}
		return t
	case string:
		// A JSON object or array inside a string (a request body).
		if trimmed := strings.TrimSpace(t); len(trimmed) > 1 && (trimmed[0] == '{' || trimmed[0] == '[') && json.Valid([]byte(trimmed)) {
			if inner := RedactJSON(json.RawMessage(trimmed)); !bytes.Equal(inner, []byte(trimmed)) {
				return string(inner)
			}
			return t
		}
		return RedactText(t)
	}
	return v
}

var urlPattern = regexp.MustCompile(`[a-zA-Z][a-zA-Z0-9+.-]*://[^\s"'<>]+`)

// RedactText replaces, in every URL found in s, the password of its user
// info and the values of query parameters named like secrets.
func RedactText(s string) string {
	if !strings.Contains(s, "://") {
		return s
	}
	return urlPattern.ReplaceAllStringFunc(s, func(m string) string {
		// Punctuation that ends a sentence or an error prefix is not part
		// of the URL: "GET https://h/?k=v: 401".
		trimmed := strings.TrimRight(m, ".,;:)]}")
		return redactURL(trimmed) + m[len(trimmed):]
	})
}

func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	changed := false
	if u.User != nil {
		if _, ok := u.User.Password(); ok {
			u.User = url.UserPassword(u.User.Username(), Redacted)
			changed = true
		}
	}
	if u.RawQuery != "" {
		q, err := url.ParseQuery(u.RawQuery)
		if err == nil {
			for k := range q {
				if IsSensitiveName(k) || k == "key" || k == "sig" || k == "signature" {
					q[k] = []string{Redacted}
					changed = true
				}
			}
			if changed {
				u.RawQuery = q.Encode()
			}
		}
	}
	if !changed {
		return raw
	}
	s := u.String()
	// Keep the marker readable.
	return strings.ReplaceAll(strings.ReplaceAll(s, "%5BREDACTED%5D", Redacted), "%5bREDACTED%5d", Redacted)
}
