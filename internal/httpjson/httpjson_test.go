package httpjson_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rebound-queue/rebound/internal/httpjson"
)

// Methods on a real server: the method's handler, GET's for HEAD, else 405
// with Allow listing each method once and the JSON error naming them.
func TestMethods(t *testing.T) {
	t.Parallel()
	ok := func(body string) http.HandlerFunc {
		return func(w http.ResponseWriter, _ *http.Request) { httpjson.WriteJSON(w, http.StatusOK, body) }
	}
	tests := []struct {
		name      string
		methods   httpjson.Methods
		method    string
		wantCode  int
		wantAllow string
		wantBody  string
	}{
		{name: "GET", methods: httpjson.Methods{http.MethodGet: ok("get")}, method: http.MethodGet,
			wantCode: http.StatusOK, wantBody: "\"get\"\n"},
		{name: "HEAD served by GET", methods: httpjson.Methods{http.MethodGet: ok("get")}, method: http.MethodHead,
			wantCode: http.StatusOK, wantBody: ""},
		{name: "POST on GET", methods: httpjson.Methods{http.MethodGet: ok("get")}, method: http.MethodPost,
			wantCode: http.StatusMethodNotAllowed, wantAllow: "GET, HEAD",
			wantBody: "{\n  \"error\": \"method POST not allowed on /x (allowed: GET, HEAD)\"\n}\n"},
		{name: "GET on POST", methods: httpjson.Methods{http.MethodPost: ok("post")}, method: http.MethodGet,
			wantCode: http.StatusMethodNotAllowed, wantAllow: "POST",
			wantBody: "{\n  \"error\": \"method GET not allowed on /x (allowed: POST)\"\n}\n"},
		{name: "HEAD of its own listed once", methods: httpjson.Methods{http.MethodGet: ok("get"), http.MethodHead: ok("head"), http.MethodPut: ok("put")},
			method: http.MethodDelete, wantCode: http.StatusMethodNotAllowed, wantAllow: "GET, HEAD, PUT",
			wantBody: "{\n  \"error\": \"method DELETE not allowed on /x (allowed: GET, HEAD, PUT)\"\n}\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			mux := http.NewServeMux()
			mux.Handle("/x", tt.methods)
			srv := httptest.NewServer(mux)
			defer srv.Close()
			req, err := http.NewRequest(tt.method, srv.URL+"/x", nil)
			require.NoError(t, err)
			resp, err := srv.Client().Do(req)
			require.NoError(t, err)
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			require.NoError(t, err)
			require.Equal(t, tt.wantCode, resp.StatusCode)
			require.Equal(t, tt.wantAllow, resp.Header.Get("Allow"))
			require.Equal(t, tt.wantBody, string(body))
			require.Equal(t, "application/json", resp.Header.Get("Content-Type"))
			require.Equal(t, "no-store", resp.Header.Get("Cache-Control"))
		})
	}
}
