package rebound

import (
	"context"
	"time"

	"github.com/rebound-queue/rebound/internal/adminauth"

	"github.com/rebound-queue/rebound/console"
	"github.com/rebound-queue/rebound/monitor"
	"github.com/rebound-queue/rebound/monitor/health"
	"github.com/rebound-queue/rebound/monitor/notify"
)

// consoleFeature mounts the web console at /console/ (package console),
// sharing the pod's session keys with the River UI.
type consoleFeature struct{}

func (consoleFeature) setup(*assembly) error { return nil }

func (consoleFeature) mount(p *Pod, _ *assembly) error {
	c := &p.config
	con, err := console.New(console.Config{
		Pool:                c.Pool,
		DLQ:                 p.dlq,
		Breakers:            p.breaker.Store(),
		Health:              &health.Checker{DB: c.Pool, Window: c.Monitoring.HealthWindow, ExcludeKinds: []string{notify.Kind}},
		Snapshots:           monitor.NewSnapshots(c.Pool),
		Token:               c.AdminToken,
		Sessions:            p.sessions,
		SecureCookie:        c.Console.SecureCookie,
		TrustForwardedProto: c.Console.TrustForwardedProto,
		Logger:              c.Logger,
	})
	if err != nil {
		return err
	}
	p.http.Handle(console.Prefix, con)
	p.http.Handle(console.Prefix+"/", con)
	return nil
}

func (consoleFeature) start(context.Context) error { return nil }
func (consoleFeature) stop(context.Context)        {}

// ConsoleConfig configures the web console (Config.Console) served at
// /console/ behind Config.AdminToken. The zero value is usable.
type ConsoleConfig struct {
	// SessionTTL is how long a login lasts; 0 means 8 hours
	// (adminauth.DefaultSessionTTL), at most 7 days. Sessions are
	// stateless: logging out removes the browser's cookie, and changing
	// the admin token ends every session at once.
	SessionTTL time.Duration
	// SecureCookie marks the session cookie Secure on plain HTTP too: set
	// it when a TLS-terminating proxy serves the console (requests that
	// arrive over TLS get a Secure cookie anyway).
	SecureCookie bool
	// TrustForwardedProto marks the cookie Secure when a request carries
	// X-Forwarded-Proto: https. Set it only behind a proxy that always
	// sets that header.
	TrustForwardedProto bool
}

// validate returns a *ConfigError naming the field that is wrong.
func (cc *ConsoleConfig) validate() error {
	if cc.SessionTTL < 0 || cc.SessionTTL > 7*24*time.Hour {
		return configErr("Console.SessionTTL", "%s is not between 0 and 168h (0 means %s)", cc.SessionTTL, adminauth.DefaultSessionTTL)
	}
	return nil
}
