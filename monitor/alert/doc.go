// Package alert holds rebound's alert rules (job_alert_config), their
// evaluation against job_retry_metrics, the circuit breakers and the
// dead-letter queue, and the state and history of what fired
// (job_alert_state, job_alert_history).
//
// # Rules
//
// A [Rule] fires for a subject (a job kind, a breaker key, or "dlq") while
// its metric's value is strictly above its threshold. The seeded rules are
// the seed's thresholds: failure rate above 20 % (warning) and above 50 %
// (error) per kind over 15 minutes with at least 10 finished jobs; any
// circuit breaker that counts as open (critical; see MetricBreakerOpen); more than 50 (error) and 100 (critical)
// unresolved dead-letter entries; more than 20 jobs dead-lettered in an
// hour (warning); an unresolved entry older than a day (warning).
//
// # Semantics
//
// These follow Prometheus Alertmanager: a (rule, subject) pair is notified
// once when it starts firing; while it keeps firing it is notified again
// only after the rule's cooldown (Alertmanager's repeat_interval); when it
// stops firing one resolved notice goes out (send_resolved).
package alert
