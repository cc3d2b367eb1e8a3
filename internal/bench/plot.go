package bench

import (
	"fmt"
	"html"
	"io"
	"math"
	"strings"
)

// plotRound is a round of any scenario: a Round, or a round that embeds
// one (HTTPRound).
type plotRound interface{ plotted() Round }

// plotted returns r; a type embedding Round gets it too.
func (r Round) plotted() Round { return r }

// svgPanel is one panel of a plot: its title and the value it draws per
// round.
type svgPanel[R plotRound] struct {
	title string
	value func(R) float64
}

// sideColors colour each side's line: the baseline blue, rebound's side
// (or the enqueue being measured) red, the third side green, the keyed
// InsertManyFast purple.
var sideColors = map[Side]string{
	SideRiver: "#1f77b4", SideRebound: "#d62728", SideReboundNoBreaker: "#2ca02c",
	SideInsertManyFast: "#1f77b4", SideInsertManyFastKeyed: "#9467bd", SideEnqueue: "#d62728", SideEnqueueJSON: "#2ca02c",
}

// writeRoundsSVG draws one panel per entry of panels, side by side: the
// panel's value per round, one line per side. Every scenario's --svg is
// drawn by it.
func writeRoundsSVG[R plotRound](w io.Writer, title string, rounds int, sides []Side, data []R, panels []svgPanel[R]) error {
	const panelW, panelH, pad = 420.0, 260.0, 55.0
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" font-family="sans-serif" font-size="12">`+"\n", panelW*float64(len(panels)), panelH+40)
	b.WriteString(`<rect width="100%" height="100%" fill="white"/>` + "\n")
	fmt.Fprintf(&b, `<text x="10" y="18" font-size="13">%s</text>`+"\n", html.EscapeString(title))
	for pi, p := range panels {
		x0 := panelW * float64(pi)
		var maxV float64
		for _, r := range data {
			maxV = math.Max(maxV, p.value(r))
		}
		if maxV == 0 {
			maxV = 1
		}
		maxV *= 1.1
		top, bottom, left, right := 40.0, panelH, x0+pad, x0+panelW-20
		fmt.Fprintf(&b, `<text x="%.0f" y="%.0f">%s</text>`+"\n", left, top-6, html.EscapeString(p.title))
		fmt.Fprintf(&b, `<line x1="%.0f" y1="%.0f" x2="%.0f" y2="%.0f" stroke="black"/>`+"\n", left, bottom, right, bottom)
		fmt.Fprintf(&b, `<line x1="%.0f" y1="%.0f" x2="%.0f" y2="%.0f" stroke="black"/>`+"\n", left, top, left, bottom)
		for i := 0; i <= 4; i++ {
			v := maxV * float64(i) / 4
			y := bottom - (bottom-top)*float64(i)/4
			label := fmt.Sprintf("%.0f", v)
			if maxV < 10 {
				label = fmt.Sprintf("%.2f", v)
			}
			fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" text-anchor="end">%s</text>`+"\n", left-4, y+4, label)
		}
		xOf := func(round int) float64 {
			if rounds <= 1 {
				return (left + right) / 2
			}
			return left + 10 + (right-left-20)*float64(round-1)/float64(rounds-1)
		}
		for i := 1; i <= rounds; i++ {
			fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" text-anchor="middle">%d</text>`+"\n", xOf(i), bottom+16, i)
		}
		for si, side := range sides {
			var pts []string
			for _, r := range data {
				if r.plotted().Side != side {
					continue
				}
				x, y := xOf(r.plotted().Number), bottom-(bottom-top)*p.value(r)/maxV
				pts = append(pts, fmt.Sprintf("%.1f,%.1f", x, y))
				fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="3" fill="%s"/>`+"\n", x, y, sideColors[side])
			}
			fmt.Fprintf(&b, `<polyline points="%s" fill="none" stroke="%s" stroke-width="2"/>`+"\n", strings.Join(pts, " "), sideColors[side])
			fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" fill="%s" text-anchor="end">%s</text>`+"\n", right-4, top+14+16*float64(si), sideColors[side], html.EscapeString(string(side)))
		}
		fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" text-anchor="middle">round</text>`+"\n", (left+right)/2, bottom+32)
	}
	b.WriteString("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}
