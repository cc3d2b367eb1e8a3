// Package redact hides secrets in what rebound shows people: job args and
// metadata (JSON) and error text (failure reasons, attempt errors, snippets
// of upstream responses). It changes copies for display; callers keep the
// originals (the dead-letter queue replays stored args intact).
//
// It imports nothing of rebound's, so any package may use it: the
// dead-letter displays, and job kinds before a response body becomes error
// text.
//
// # Names
//
// A key, header, field or parameter name is secret when [IsSensitiveName]
// says so. In short: split into words (at '-', '_', '.', spaces and
// camelCase), it contains password, secret, token, credential, cookie,
// session, signature, authorization, apikey, accesskey or privatekey
// (passwd, passphrase, sessid, csrf, xsrf too), has a word starting with
// auth (not author, authenticate), a word pwd, pass, jwt or sig, or ends
// with key / keys after a word that does not name a public key
// (operation_key, Idempotency-Key, primary_key and public_key stay shown).
// In name=value text and URL query strings, key alone is secret too
// (?key=... is how many APIs take a key). docs/redaction.md has the whole
// table of what is and is not caught.
//
// # Text
//
// [Text] replaces with [Marker]:
//
//   - the value of a JSON-style pair whose name is secret, "name": "value"
//     or 'name': 'value', also inside escaped JSON (\"name\": \"value\"), and
//     whatever follows the colon when it is not a string (a number, an
//     array, an object);
//   - the value of name=value pairs whose name is secret (query strings,
//     form bodies, cookies, key=value logs);
//   - the value of header lines whose name is secret ("Authorization: ...",
//     "X-Api-Key: ..." at the start of a line: the rest of the line), and
//     of such headers inside a line (the value's first word, two when the
//     first is a scheme such as Bearer; [...] in Go's printing of an
//     http.Header);
//   - the credentials after Bearer or Basic anywhere (any case);
//   - the password of a URL's user info (https://user:pw@host).
//
// It never panics, is idempotent (Text(Text(s)) == Text(s)) and keeps valid
// UTF-8 valid. It is a display filter, not a guarantee: a secret with no
// recognisable name around it stays.
package redact

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"regexp"
	"strings"
	"unicode"
)

// Marker replaces a secret.
const Marker = "[REDACTED]"

// sensitiveParts mark a name as secret when its words joined contain one
// of them (rule 1 of [IsSensitiveName]).
var sensitiveParts = []string{
	"password", "passwd", "passphrase", "secret", "token", "credential", "cookie",
	"session", "sessid", "signature", "authorization", "authorisation",
	"apikey", "accesskey", "privatekey", "csrf", "xsrf",
}

// sensitiveWords mark a name as secret when one of its words is one of
// them (rule 3).
var sensitiveWords = map[string]bool{"pwd": true, "pass": true, "jwt": true, "sig": true}

// tokenCounters are the words before "tokens" that make it a count, not a
// secret: max_tokens, x-ratelimit-remaining-tokens (rule 1's exception).
var tokenCounters = map[string]bool{
	"max": true, "min": true, "total": true, "prompt": true, "completion": true, "input": true,
	"output": true, "remaining": true, "limit": true, "used": true, "num": true,
}

// publicKeys are the words before a last word "key" or "keys" that name a
// key that is no secret (rule 4's exceptions): rebound's operation key and
// Idempotency-Key, River's unique key, data-layout keys, public keys.
var publicKeys = map[string]bool{
	"operation": true, "idempotency": true, "unique": true, "dedup": true, "dedupe": true,
	"deduplication": true, "partition": true, "primary": true, "foreign": true, "sort": true,
	"shard": true, "routing": true, "cache": true, "public": true,
}

// paramNames are the extra secret names of name=value pairs and query
// strings, compared with the whole name lower-cased: ?key=... is how many
// APIs take a key.
var paramNames = map[string]bool{"key": true}

// words splits a name into lower-case words: at every character that is
// not a letter or a digit, and between a lower-case letter or a digit and
// an upper-case letter (camelCase). "X-Hub-Signature-256" gives x, hub,
// signature, 256; "accessKey" access, key; "sessionID" session, id;
// "APIKey" apikey.
func words(name string) []string {
	var out []string
	start := -1
	var prev rune
	for i, r := range name {
		alnum := unicode.IsLetter(r) || unicode.IsDigit(r)
		switch {
		case !alnum:
			if start >= 0 {
				out = append(out, strings.ToLower(name[start:i]))
				start = -1
			}
		case start < 0:
			start = i
		case unicode.IsUpper(r) && (unicode.IsLower(prev) || unicode.IsDigit(prev)):
			out = append(out, strings.ToLower(name[start:i]))
			start = i
		}
		prev = r
	}
	if start >= 0 {
		out = append(out, strings.ToLower(name[start:]))
	}
	return out
}

// IsSensitiveName reports whether a key, header, field or parameter name
// holds a secret. The name is split into lower-case words at every
// character that is not a letter or digit and at camelCase boundaries
// ("X-Api-Key": x, api, key; "accessKey": access, key; "APIKey": apikey),
// and it is secret when:
//
//  1. its words joined contain password, passwd, passphrase, secret,
//     token, credential, cookie, session, sessid, signature, authorization,
//     authorisation, apikey, accesskey, privatekey, csrf or xsrf
//     (client_secret, access_token, Set-Cookie, session_id, PHPSESSID,
//     X-Hub-Signature-256, x-api-key, AWSAccessKeyId) — except the word
//     tokens right after max, min, total, prompt, completion, input,
//     output, remaining, limit, used or num, which is a count (max_tokens,
//     x-ratelimit-remaining-tokens);
//  2. a word starts with auth but not with author nor authenticate (auth,
//     authn, authz, auth_header, X-Auth-User, authentication; not author,
//     authority, WWW-Authenticate, authenticated);
//  3. a word is pwd, pass, jwt or sig (db_pwd, user_pass);
//  4. its last word is key or keys after another word that is not
//     operation, idempotency, unique, dedup, dedupe, deduplication,
//     partition, primary, foreign, sort, shard, routing, cache or public
//     (access_key, encryption-key, accessKey, ssh_keys; not operation_key,
//     Idempotency-Key, primary_key, public_key, nor key alone).
//
// Name=value pairs and query strings also treat the name key as secret
// (?key=...).
func IsSensitiveName(name string) bool {
	w := words(name)
	if len(w) == 0 {
		return false
	}
	var joined strings.Builder
	for i, word := range w {
		if word == "tokens" && i > 0 && tokenCounters[w[i-1]] {
			joined.WriteByte(' ') // a count: keeps "token" out of the joined words
			continue
		}
		joined.WriteString(word)
		if sensitiveWords[word] || isAuthWord(word) {
			return true
		}
	}
	j := joined.String()
	for _, part := range sensitiveParts {
		if strings.Contains(j, part) {
			return true
		}
	}
	last := len(w) - 1
	return last > 0 && (w[last] == "key" || w[last] == "keys") && !publicKeys[w[last-1]]
}

// isAuthWord reports whether word starts with auth but not with author
// (author, authority; authorization is rule 1's) nor authenticate (the
// WWW-Authenticate challenge, authenticated: true).
func isAuthWord(word string) bool {
	return strings.HasPrefix(word, "auth") && !strings.HasPrefix(word, "author") && !strings.HasPrefix(word, "authenticate")
}

// isSensitiveParam is IsSensitiveName plus the names that are secret in
// query strings and form bodies ("key", also as "key[...]").
func isSensitiveParam(name string) bool {
	if i := strings.IndexByte(name, '['); i > 0 && paramNames[strings.ToLower(name[:i])] {
		return true
	}
	return paramNames[strings.ToLower(name)] || IsSensitiveName(name)
}

// hiddenJSON replaces input that is not valid JSON.
var hiddenJSON = json.RawMessage(`"[unreadable JSON hidden]"`)

// JSON returns raw with secrets replaced by [Marker]: the value of every
// key named like a secret ([IsSensitiveName]; a null stays null), the value
// of every {"name"|"key"|"header": <secret name>, "value"|"values": ...}
// pair, JSON objects and arrays held in strings (a request body) likewise,
// and every other string through [Text]. Numbers keep their digits. Input
// that is not valid JSON comes back as a JSON string saying so, never as
// it is. Object keys come back sorted.
func JSON(raw json.RawMessage) json.RawMessage {
	if len(raw) == 0 {
		return raw
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return hiddenJSON
	}
	if _, err := dec.Token(); err == nil {
		return hiddenJSON // more than one value
	}
	out, err := json.Marshal(redactValue(v))
	if err != nil {
		return hiddenJSON
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
						t[valueKey] = Marker
					}
				}
			}
		}
		for k, val := range t {
			if IsSensitiveName(k) {
				if val != nil {
					t[k] = Marker
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
			if inner := JSON(json.RawMessage(trimmed)); !bytes.Equal(inner, []byte(trimmed)) {
				return string(inner)
			}
			return t
		}
		return Text(t)
	}
	return v
}

// maxPasses bounds the passes [Text] makes to reach a fixed point; one or
// two are the rule.
const maxPasses = 8

// Text returns s with secrets replaced by [Marker] (see the package doc for
// what it finds).
func Text(s string) string {
	for range maxPasses {
		next := textOnce(s)
		if next == s {
			return s
		}
		s = next
	}
	return s
}

func textOnce(s string) string {
	s = redactUserinfo(s)
	s = redactSchemes(s)
	s = redactJSONPairs(s)
	s = redactNameValuePairs(s)
	s = redactHeaderLines(s)
	s = redactInlineHeaders(s)
	s = redactParams(s)
	return s
}

// span is a byte range of s to replace with repl.
type span struct {
	start, end int
	repl       string
}

// apply replaces non-overlapping spans sorted by start.
func apply(s string, spans []span) string {
	if len(spans) == 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + len(spans)*len(Marker))
	prev := 0
	for _, sp := range spans {
		b.WriteString(s[prev:sp.start])
		b.WriteString(sp.repl)
		prev = sp.end
	}
	b.WriteString(s[prev:])
	return b.String()
}

var userinfoPattern = regexp.MustCompile(`(?i)\b[a-z][a-z0-9+.\-]*://[^\s/?#@:"'<>\[\]]*:([^\s/?#@"'<>]+)@`)

// redactUserinfo hides the password in scheme://user:password@host.
func redactUserinfo(s string) string {
	if !strings.Contains(s, "://") {
		return s
	}
	var spans []span
	for _, m := range userinfoPattern.FindAllStringSubmatchIndex(s, -1) {
		if s[m[2]:m[3]] != Marker {
			spans = append(spans, span{m[2], m[3], Marker})
		}
	}
	return apply(s, spans)
}

var schemePattern = regexp.MustCompile(`(?i)\b(bearer|basic)[ \t]+([A-Za-z0-9\-._~+/]+=*)`)

// redactSchemes hides the credentials after Bearer and Basic.
func redactSchemes(s string) string {
	var spans []span
	for pos := 0; pos < len(s); {
		m := schemePattern.FindStringSubmatchIndex(s[pos:])
		if m == nil {
			break
		}
		for i := range m {
			m[i] += pos
		}
		tok := s[m[4]:m[5]]
		skip := m[5] < len(s) && s[m[5]] == '"' && strings.Contains(tok, "=") || // a challenge's auth-param: Bearer realm="api"
			strings.EqualFold(s[m[2]:m[3]], "basic") && !looksLikeBasicCredentials(tok) || // "basic validation failed"
			strings.EqualFold(tok, "bearer") || strings.EqualFold(tok, "basic") // "Bearer Bearer x"
		if skip {
			pos = m[3] // the word after may be a scheme itself
			continue
		}
		spans = append(spans, span{m[4], m[5], Marker})
		pos = m[5]
	}
	return apply(s, spans)
}

// looksLikeBasicCredentials tells base64("user:password") from an English
// word after "basic": it decodes to something with a colon, or is at least
// 8 characters and not all lower-case letters.
func looksLikeBasicCredentials(tok string) bool {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(tok); err == nil && bytes.IndexByte(b, ':') >= 0 {
			return true
		}
	}
	if len(tok) < 8 {
		return false
	}
	for i := 0; i < len(tok); i++ {
		if tok[i] < 'a' || tok[i] > 'z' {
			return true
		}
	}
	return false
}

// jsonKeyPattern finds "name": (or 'name':, or \"name\": inside escaped
// JSON); the value is read by hand after it.
var jsonKeyPattern = regexp.MustCompile(`(\\*)(["'])([^"'\\\r\n]{1,128})(\\*)(["'])[ \t]*:[ \t]*`)

// redactJSONPairs hides the values of JSON-style pairs with secret names.
func redactJSONPairs(s string) string {
	if !strings.ContainsAny(s, `"'`) {
		return s
	}
	var spans []span
	pos := 0
	for pos < len(s) {
		m := jsonKeyPattern.FindStringSubmatchIndex(s[pos:])
		if m == nil {
			break
		}
		for i := range m {
			m[i] += pos
		}
		keyEnd := m[1]
		level := m[3] - m[2]
		quote := s[m[4]]
		if s[m[10]] != quote || m[9]-m[8] != level {
			pos = m[0] + 1 // not a key after all: look again one byte on
			continue
		}
		if !IsSensitiveName(s[m[6]:m[7]]) {
			pos = keyEnd // its value may hold pairs of its own
			continue
		}
		sp, end, ok := jsonValueSpan(s, keyEnd, level, quote)
		if ok {
			spans = append(spans, sp)
		}
		// Go on from the value's last byte: a closing quote may open the
		// next key when the text is not well-formed JSON.
		pos = max(end-1, keyEnd)
	}
	return apply(s, spans)
}

// nameValuePattern finds {"name": "X", "value": ...}-style pairs (also with
// "key" or "header" for the name and "values" for the value), as a list of
// headers is often written; X is checked with IsSensitiveName.
var nameValuePattern = regexp.MustCompile(`(?i)"(?:name|key|header)"[ \t]*:[ \t]*"([^"\\\r\n]{1,128})"[ \t]*,[ \t]*"values?"[ \t]*:[ \t]*`)

// redactNameValuePairs hides the value of a name/value pair whose name is
// secret, in text (JSON redaction handles it in parsed JSON).
func redactNameValuePairs(s string) string {
	if !strings.Contains(s, `"`) {
		return s
	}
	var spans []span
	for _, m := range nameValuePattern.FindAllStringSubmatchIndex(s, -1) {
		if !IsSensitiveName(s[m[2]:m[3]]) {
			continue
		}
		if sp, _, ok := jsonValueSpan(s, m[1], 0, '"'); ok {
			spans = append(spans, sp)
		}
	}
	return apply(s, spans)
}

// quoteAt reports whether s[i] is the quote q preceded by a run of
// backslashes that makes it a delimiter at escaping level (the number of
// backslashes before the opening quote): the run's length is level modulo
// 2*(level+1). Level 0 is plain JSON (an even run), level 1 JSON inside a
// JSON string (\"), and so on.
func quoteAt(s string, i, level int, q byte) bool {
	if s[i] != q {
		return false
	}
	run := 0
	for j := i - 1; j >= 0 && s[j] == '\\'; j-- {
		run++
	}
	return run%(2*(level+1)) == level
}

// jsonValueSpan finds the value that starts at s[i] (after "name": ) and
// returns the span that hides it, where scanning may go on, and whether
// there is anything to hide.
func jsonValueSpan(s string, i, level int, q byte) (span, int, bool) {
	quoted := strings.Repeat(`\`, level) + string(q) + Marker + strings.Repeat(`\`, level) + string(q)
	if i >= len(s) {
		return span{}, i, false
	}
	// A string: from after the opening quote to the closing one at the
	// same level (to the end of s when it is cut off). Either quote opens
	// it: {'a': "b"} happens.
	if open := i + level; open < len(s) && (s[open] == '"' || s[open] == '\'') && strings.HasPrefix(s[i:], strings.Repeat(`\`, level)) {
		q = s[open]
		start := open + 1
		for j := start; j < len(s); j++ {
			if quoteAt(s, j, level, q) {
				end := j - level
				if s[start:end] == Marker {
					return span{}, j + 1, false
				}
				return span{start, end, Marker}, j + 1, true
			}
		}
		if s[start:] == Marker {
			return span{}, len(s), false
		}
		return span{start, len(s), Marker}, len(s), true
	}
	switch s[i] {
	case '{', '[':
		// An object or array: to its closing bracket (brackets in strings
		// at this level skipped), or to the end of s when it is cut off.
		depth, inString := 0, false
		for j := i; j < len(s); j++ {
			switch {
			case quoteAt(s, j, level, '"'):
				inString = !inString
			case inString:
			case s[j] == '{' || s[j] == '[':
				depth++
			case s[j] == '}' || s[j] == ']':
				depth--
				if depth == 0 {
					return span{i, j + 1, quoted}, j + 1, true
				}
			}
		}
		return span{i, len(s), quoted}, len(s), true
	}
	// A number, true, false, null or a bare word.
	j := i
	for j < len(s) && !isSpace(s[j]) && s[j] != ',' && s[j] != '}' && s[j] != ']' && s[j] != '\\' && s[j] != '"' && s[j] != '\'' {
		j++
	}
	if v := s[i:j]; v == "" || v == "null" {
		return span{}, j, false
	}
	return span{i, j, quoted}, j, true
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'
}

var headerLinePattern = regexp.MustCompile(`(?m)^[ \t]*([A-Za-z][A-Za-z0-9_.\-]{0,127})[ \t]*:[ \t]*([^\r\n]*)`)

// redactHeaderLines hides the rest of a line that starts with a secret
// header or field name and a colon: "Authorization: Bearer x",
// "Cookie: a=1; b=2", "password: hunter2".
func redactHeaderLines(s string) string {
	if !strings.Contains(s, ":") {
		return s
	}
	var spans []span
	for _, m := range headerLinePattern.FindAllStringSubmatchIndex(s, -1) {
		if !IsSensitiveName(s[m[2]:m[3]]) {
			continue
		}
		value := strings.TrimRight(s[m[4]:m[5]], " \t")
		if value == "" || alreadyRedacted(value) {
			continue
		}
		spans = append(spans, span{m[4], m[4] + len(value), Marker})
	}
	return apply(s, spans)
}

// alreadyRedacted reports whether a value is the marker, perhaps after an
// auth scheme word ("Bearer [REDACTED]").
func alreadyRedacted(v string) bool {
	if v == Marker {
		return true
	}
	scheme, rest, ok := strings.Cut(v, " ")
	if !ok || strings.TrimLeft(rest, " \t") != Marker {
		return false
	}
	for i := 0; i < len(scheme); i++ {
		if c := scheme[i] | 0x20; c < 'a' || c > 'z' {
			return false
		}
	}
	return scheme != ""
}

var inlineHeaderPattern = regexp.MustCompile(`(?i)\b((?:proxy-)?authorization|(?:set-)?cookie|[a-z0-9]+(?:[-_][a-z0-9]+)+)[ \t]*:[ \t]*`)

// redactInlineHeaders hides the value of a secret header inside a line:
// "GET /x with X-Api-Key: abc failed", "map[Authorization:[Bearer x]]".
// Only names that look like headers (Authorization, Cookie, or names with
// '-' or '_'): a bare "token:" inside a sentence is usually prose.
func redactInlineHeaders(s string) string {
	if !strings.Contains(s, ":") {
		return s
	}
	var spans []span
	last := 0
	for _, m := range inlineHeaderPattern.FindAllStringSubmatchIndex(s, -1) {
		if m[0] < last || !IsSensitiveName(s[m[2]:m[3]]) {
			continue
		}
		i := m[1]
		if i >= len(s) || strings.HasPrefix(s[i:], Marker) {
			continue
		}
		end := i
		switch c := s[i]; {
		case c == '[': // Go's printing of a header map: Name:[v1 v2]
			end = len(s)
			for j := i + 1; j < len(s); j++ {
				if strings.HasPrefix(s[j:], Marker) {
					j += len(Marker) - 1
					continue
				}
				if s[j] == ']' {
					end = j + 1
					break
				}
			}
			if inner := strings.TrimSuffix(s[i+1:end], "]"); alreadyRedacted(inner) {
				continue
			}
		case c == '"' || c == '\'':
			// A quoted value: its content.
			i++
			end = len(s)
			for j := i; j < len(s); j++ {
				if quoteAt(s, j, 0, c) {
					end = j
					break
				}
			}
			if end == i || alreadyRedacted(s[i:end]) {
				continue
			}
		default:
			end = inlineToken(s, i)
			if end == i {
				continue
			}
			if isWord(s[i:end]) { // a scheme: take its credentials too
				j := end
				for j < len(s) && (s[j] == ' ' || s[j] == '\t') {
					j++
				}
				if k := inlineToken(s, j); k > j {
					if strings.HasPrefix(s[j:], Marker) {
						continue // "Bearer [REDACTED]"
					}
					end = k
				}
			}
		}
		if s[i:end] == Marker {
			continue
		}
		spans = append(spans, span{i, end, Marker})
		last = end
	}
	return apply(s, spans)
}

// inlineToken returns the end of the token starting at s[i].
func inlineToken(s string, i int) int {
	j := i
	for j < len(s) && !isSpace(s[j]) && !strings.ContainsRune(`,;"'<>)}]`, rune(s[j])) {
		j++
	}
	return j
}

func isWord(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i] | 0x20; c < 'a' || c > 'z' {
			return false
		}
	}
	return s != ""
}

var paramPattern = regexp.MustCompile(`([A-Za-z0-9_.\-]{1,128}(?:\[[A-Za-z0-9_.\-]*\])*)=`)

// redactParams hides the values of name=value pairs with secret names:
// ?api_key=..., password=...&, sid=...; , token="...".
func redactParams(s string) string {
	if !strings.Contains(s, "=") {
		return s
	}
	var spans []span
	last := 0
	for _, m := range paramPattern.FindAllStringSubmatchIndex(s, -1) {
		if m[0] < last || !isSensitiveParam(s[m[2]:m[3]]) {
			continue
		}
		i := m[1]
		if i >= len(s) || strings.HasPrefix(s[i:], Marker) {
			continue
		}
		var start, end int
		if q := s[i]; q == '"' || q == '\'' {
			start, end = i+1, len(s)
			for j := start; j < len(s); j++ {
				if quoteAt(s, j, 0, q) {
					end = j
					break
				}
			}
		} else {
			start, end = i, i
			for end < len(s) && !isSpace(s[end]) && !strings.ContainsRune(`&;"'<>`, rune(s[end])) {
				end++
			}
			end = start + len(strings.TrimRight(s[start:end], ".,:)}"))
		}
		if end <= start || s[start:end] == Marker {
			continue
		}
		spans = append(spans, span{start, end, Marker})
		last = end
	}
	return apply(s, spans)
}
