package deadletter

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
)

// DefaultSizeCacheTTL is how long a [SizeCollector] reuses what it read when
// SizeCollectorConfig.CacheTTL is 0.
const DefaultSizeCacheTTL = 5 * time.Second

// SizeCollectorConfig configures a [SizeCollector]. The zero value is usable.
type SizeCollectorConfig struct {
	// CacheTTL is how long one read serves every scrape of this pod.
	// Defaults to [DefaultSizeCacheTTL].
	CacheTTL time.Duration
	// Timeout bounds one read. Defaults to 5 seconds.
	Timeout time.Duration
	// Logger gets a warning when the database cannot be read. Defaults to a
	// logger that discards everything.
	Logger *slog.Logger
}

// SizeCollector is a prometheus.Collector exporting, at scrape time:
//
//   - rebound_dead_letter_queue_size{kind,status}: entries by job kind and
//     status. Read from job_dead_letter_queue_counts, which triggers keep
//     exact and the [Reconciler] keeps small: the cost of a scrape does not
//     grow with the DLQ. A kind/status pair once seen stays exported (0
//     when empty).
//   - rebound_dead_letter_queue_oldest_unresolved_seconds: age of the
//     oldest unresolved entry (0 when none), one index lookup.
//
// Reads are cached for CacheTTL, so several scrapers of one pod cost one
// query. When the database cannot be read the metrics are left out of the
// scrape (and a warning logged) rather than reported as zero. Register it
// with reg.MustRegister(deadletter.NewSizeCollector(pool, nil)).
type SizeCollector struct {
	pool   *pgxpool.Pool
	config SizeCollectorConfig
	now    func() time.Time

	sizeDesc   *prometheus.Desc
	oldestDesc *prometheus.Desc

	mu     sync.Mutex
	cached *sizeReading
	until  time.Time
}

type sizeReading struct {
	sizes  []sizeRow
	oldest float64
}

type sizeRow struct {
	kind, status string
	n            int64
}

// NewSizeCollector returns a SizeCollector reading through pool. config may
// be nil.
func NewSizeCollector(pool *pgxpool.Pool, config *SizeCollectorConfig) *SizeCollector {
	c := SizeCollectorConfig{}
	if config != nil {
		c = *config
	}
	if c.CacheTTL <= 0 {
		c.CacheTTL = DefaultSizeCacheTTL
	}
	if c.Timeout <= 0 {
		c.Timeout = 5 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return &SizeCollector{
		pool:   pool,
		config: c,
		now:    time.Now,
		sizeDesc: prometheus.NewDesc("rebound_dead_letter_queue_size",
			"Dead-letter queue entries by job kind and status (unresolved, retried, resolved).",
			[]string{"kind", "status"}, nil),
		oldestDesc: prometheus.NewDesc("rebound_dead_letter_queue_oldest_unresolved_seconds",
			"Age of the oldest unresolved dead-letter entry, in seconds (0 when there is none).",
			nil, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *SizeCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.sizeDesc
	ch <- c.oldestDesc
}

// Collect implements prometheus.Collector.
func (c *SizeCollector) Collect(ch chan<- prometheus.Metric) {
	r, err := c.read()
	if err != nil {
		c.config.Logger.Warn("read dead-letter queue size", slog.String("error", err.Error()))
		return
	}
	for _, s := range r.sizes {
		ch <- prometheus.MustNewConstMetric(c.sizeDesc, prometheus.GaugeValue, float64(s.n), s.kind, s.status)
	}
	ch <- prometheus.MustNewConstMetric(c.oldestDesc, prometheus.GaugeValue, r.oldest)
}

func (c *SizeCollector) read() (*sizeReading, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cached != nil && c.now().Before(c.until) {
		return c.cached, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.config.Timeout)
	defer cancel()
	rows, err := c.pool.Query(ctx, `SELECT kind, status, sum(n)::bigint FROM job_dead_letter_queue_counts
		GROUP BY kind, status ORDER BY kind, status`)
	if err != nil {
		return nil, err
	}
	r := &sizeReading{}
	for rows.Next() {
		var s sizeRow
		if err := rows.Scan(&s.kind, &s.status, &s.n); err != nil {
			rows.Close()
			return nil, err
		}
		r.sizes = append(r.sizes, s)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	err = c.pool.QueryRow(ctx, `SELECT coalesce(extract(epoch FROM now() - min(dead_lettered_at))::float8, 0)
		FROM `+Table+` WHERE status = 'unresolved'`).Scan(&r.oldest)
	if err != nil {
		return nil, err
	}
	r.oldest = max(r.oldest, 0)
	c.cached, c.until = r, c.now().Add(c.config.CacheTTL)
	return r, nil
}
