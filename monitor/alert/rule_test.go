package alert_test

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rebound-queue/rebound/monitor/alert"
	"github.com/rebound-queue/rebound/monitor/notify"
)

// CheckChannels names the first enabled rule, in the order given, that
// names a channel the configuration lacks, and that channel; disabled
// rules are not checked.
func TestCheckChannels(t *testing.T) {
	t.Parallel()
	hook := notify.Channel{Type: notify.TypeWebhook, URL: "https://hooks.example.com/x"}
	configured := map[string]notify.Channel{"slack": hook, "hook": hook}
	rule := func(name string, enabled bool, channels ...string) alert.Rule {
		return alert.Rule{Name: name, Enabled: enabled, Channels: channels}
	}
	tests := []struct {
		name       string
		rules      []alert.Rule
		configured map[string]notify.Channel
		want       *alert.UnknownChannelError
		wantErr    string
	}{
		{name: "every channel configured", rules: []alert.Rule{rule("a", true, "hook", "slack"), rule("b", true)}, configured: configured},
		{name: "no rules", configured: nil},
		{name: "no channel named, none configured", rules: []alert.Rule{rule("a", true)}, configured: nil},
		{name: "disabled rule not checked", rules: []alert.Rule{rule("a", false, "pager")}, configured: configured},
		{name: "unknown channel", rules: []alert.Rule{rule("a", true, "hook"), rule("b", true, "slack", "pager", "mail")}, configured: configured,
			want:    &alert.UnknownChannelError{Rule: "b", Channel: "pager", Configured: []string{"hook", "slack"}},
			wantErr: `alert rule "b" names channel "pager", which is not configured (configured channels: hook, slack)`},
		{name: "first enabled rule wins", rules: []alert.Rule{rule("a", false, "x"), rule("b", true, "y"), rule("c", true, "z")}, configured: configured,
			want:    &alert.UnknownChannelError{Rule: "b", Channel: "y", Configured: []string{"hook", "slack"}},
			wantErr: `alert rule "b" names channel "y", which is not configured (configured channels: hook, slack)`},
		{name: "nothing configured", rules: []alert.Rule{rule("breaker-open", true, "hook")}, configured: nil,
			want:    &alert.UnknownChannelError{Rule: "breaker-open", Channel: "hook", Configured: []string{}},
			wantErr: `alert rule "breaker-open" names channel "hook", which is not configured (no channel is configured)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := alert.CheckChannels(tt.rules, tt.configured)
			if tt.want == nil {
				require.NoError(t, err)
				return
			}
			require.EqualError(t, err, tt.wantErr)
			var uc *alert.UnknownChannelError
			require.True(t, errors.As(err, &uc))
			require.Equal(t, tt.want, uc)
		})
	}
}
