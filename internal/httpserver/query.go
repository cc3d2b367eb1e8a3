package httpserver

import (
	"net/http"
	"net/url"
)

// Query returns r's query parameters, or answers 400 with a JSON error and
// returns false when the query string is malformed: a ";" (which
// url.URL.Query drops, with every parameter after it, without a word) or a
// bad %-escape. Admin routes read their query through it, so a parameter
// they were sent is never silently ignored.
func Query(w http.ResponseWriter, r *http.Request) (url.Values, bool) {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		WriteError(w, http.StatusBadRequest, "malformed query string: "+err.Error()+" (separate parameters with &)")
		return nil, false
	}
	return q, true
}
