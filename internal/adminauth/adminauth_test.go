package adminauth_test

import (
	"encoding/base64"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rebound-queue/rebound/internal/adminauth"
)

func TestValidateToken(t *testing.T) {
	t.Parallel()
	require.NoError(t, adminauth.ValidateToken("0123456789abcdef"))
	require.EqualError(t, adminauth.CheckListenAddr("0.0.0.0:8080", "short"),
		"REBOUND_ADMIN_TOKEN is too short (5 characters): use at least 16 random characters, e.g. `openssl rand -hex 32`")
	require.EqualError(t, adminauth.CheckListenAddr("127.0.0.1:8080", " 0123456789abcdef"),
		"REBOUND_ADMIN_TOKEN has leading or trailing white space")
	require.EqualError(t, adminauth.ValidateToken("0123456789\x01abcdef"),
		"REBOUND_ADMIN_TOKEN contains a control character, which no HTTP client can send")
}

func TestCheckListenAddr(t *testing.T) {
	t.Parallel()
	tests := []struct {
		addr, token string
		wantErr     bool
	}{
		{"127.0.0.1:8080", "", false},
		{"localhost:8080", "", false},
		{"[::1]:8080", "", false},
		{"127.0.0.2:8080", "", false},
		{":8080", "", true},
		{"0.0.0.0:8080", "", true},
		{"10.1.2.3:8080", "", true},
		{"0.0.0.0:8080", "0123456789abcdef", false},
	}
	for _, tt := range tests {
		t.Run(tt.addr+"/"+tt.token, func(t *testing.T) {
			t.Parallel()
			err := adminauth.CheckListenAddr(tt.addr, tt.token)
			if !tt.wantErr {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, adminauth.ErrNoToken)
			require.ErrorContains(t, err, "not a loopback address")
			require.ErrorContains(t, err, "set REBOUND_ADMIN_TOKEN")
		})
	}
}

func TestRequire(t *testing.T) {
	t.Parallel()
	basic := func(user, pass string) string {
		return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
	}
	tests := []struct {
		name       string
		token      string
		allowBasic bool
		auth       string
		remote     string
		wantCode   int
		wantBody   string
		wantChall  bool
	}{
		{name: "bearer ok", token: "tk", auth: "Bearer tk", wantCode: 200},
		{name: "bearer lower-case scheme", token: "tk", auth: "bearer tk", wantCode: 200},
		{name: "missing", token: "tk", wantCode: 401, wantBody: `{"error":"missing admin token: send Authorization: Bearer \u003cREBOUND_ADMIN_TOKEN\u003e"}`},
		{name: "wrong", token: "tk", auth: "Bearer tk2", wantCode: 401, wantBody: `{"error":"wrong admin token"}`},
		{name: "basic refused for the API", token: "tk", auth: basic("me", "tk"), wantCode: 401},
		{name: "basic for the UI", token: "tk", allowBasic: true, auth: basic("me", "tk"), wantCode: 200},
		{name: "basic wrong password", token: "tk", allowBasic: true, auth: basic("tk", "x"), wantCode: 401, wantChall: true},
		{name: "UI asks the browser", token: "tk", allowBasic: true, wantCode: 401, wantChall: true},
		{name: "no token, loopback client", remote: "127.0.0.1:5555", wantCode: 200},
		{name: "no token, remote client", remote: "192.0.2.7:5555", wantCode: 403},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			called := false
			h := adminauth.Require(tt.token, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				called = true
				_, _ = io.WriteString(w, "inner")
			}), &adminauth.Opts{AllowBasic: tt.allowBasic})
			req := httptest.NewRequest("GET", "/api/admin/dlq", nil)
			if tt.auth != "" {
				req.Header.Set("Authorization", tt.auth)
			}
			if tt.remote != "" {
				req.RemoteAddr = tt.remote
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			require.Equal(t, tt.wantCode, rec.Code)
			require.Equal(t, tt.wantCode == 200, called)
			if tt.wantCode != 200 {
				require.Equal(t, "application/json", rec.Header().Get("Content-Type"))
			}
			if tt.wantBody != "" {
				require.JSONEq(t, tt.wantBody, rec.Body.String())
			}
			require.Equal(t, tt.wantChall, rec.Header().Get("WWW-Authenticate") != "")
		})
	}
}
