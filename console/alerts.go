package console

import (
	"net/http"

	"github.com/rebound-queue/rebound/monitor/alert"
)

type alertsData struct {
	Now     []alert.Condition
	Overall string
	Rules   []alert.Rule
	History []alert.Event
}

// historyLimit is how many history rows the alerts page shows.
const historyLimit = 100

func (c *Console) alerts(w http.ResponseWriter, r *http.Request, v *view) {
	d := &alertsData{}
	v.Title, v.Nav, v.Data = "Alerts", "alerts", d
	ctx, cancel := pageContext(r)
	defer cancel()
	rep, err := c.cfg.Health.Check(ctx)
	if err != nil {
		c.failErr(w, r, v, err)
		return
	}
	d.Now, d.Overall = rep.Alerts, rep.OverallHealth
	if d.Rules, err = alert.NewRules(c.cfg.Pool).List(ctx); err != nil {
		c.failErr(w, r, v, err)
		return
	}
	if d.History, err = alert.NewHistory(c.cfg.Pool).List(ctx, "", historyLimit); err != nil {
		c.failErr(w, r, v, err)
		return
	}
	c.render(w, r, http.StatusOK, "alerts", v)
}
