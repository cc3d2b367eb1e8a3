package deploy_test

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
	"github.com/stretchr/testify/require"
)

// instruction is one Dockerfile instruction: its keyword (upper case) and
// the rest of its (continued) line.
type instruction struct {
	keyword, rest string
}

// readDockerfile splits the Dockerfile into instructions, joining lines
// continued by a trailing backslash and skipping comments.
func readDockerfile(t *testing.T) []instruction {
	t.Helper()
	f, err := os.Open(filepath.Join(root, "Dockerfile"))
	require.NoError(t, err)
	defer f.Close()
	var out []instruction
	var cur strings.Builder
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if cur.Len() == 0 && (line == "" || strings.HasPrefix(line, "#")) {
			continue
		}
		if cont, ok := strings.CutSuffix(line, `\`); ok {
			cur.WriteString(cont + " ")
			continue
		}
		cur.WriteString(line)
		keyword, rest, _ := strings.Cut(cur.String(), " ")
		out = append(out, instruction{strings.ToUpper(keyword), strings.TrimSpace(rest)})
		cur.Reset()
	}
	require.NoError(t, sc.Err())
	return out
}

// packageArgs are the arguments of a go build command line that name
// packages (./...).
func packageArgs(fields []string) []string {
	var pkgs []string
	for _, f := range fields {
		if strings.HasPrefix(f, "./") {
			pkgs = append(pkgs, f)
		}
	}
	return pkgs
}

// goList is `go list` of patterns, from the module root.
func goList(t *testing.T, args ...string) []string {
	t.Helper()
	cmd := exec.Command("go", append([]string{"list"}, args...)...)
	cmd.Dir = root
	out, err := cmd.Output()
	require.NoError(t, err, "go list %q", args)
	return strings.Fields(string(out))
}

// makeBuildPackages are the package arguments of `make build`'s go build.
func makeBuildPackages(t *testing.T) []string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(root, "Makefile"))
	require.NoError(t, err)
	_, recipe, ok := strings.Cut(string(raw), "\nbuild:")
	require.True(t, ok, "no build target in the Makefile")
	line, _, _ := strings.Cut(strings.TrimSpace(recipe), "\n")
	require.Contains(t, line, "$(GO) build")
	return packageArgs(strings.Fields(line))
}

// The image builds the packages `make build` builds, with a Go at least as
// new as go.mod asks, copies them all into the final stage, runs them as an
// unprivileged user, and its default command is one of them.
func TestDockerfile(t *testing.T) {
	t.Parallel()
	ins := readDockerfile(t)
	args := map[string]string{}
	var froms []string
	var buildStage, outDir string
	var buildPkgs []string
	var final []instruction // instructions after the last FROM
	for _, in := range ins {
		switch in.keyword {
		case "ARG":
			name, value, _ := strings.Cut(in.rest, "=")
			args[name] = value
		case "FROM":
			f := strings.Fields(in.rest)
			image := os.Expand(f[0], func(k string) string { return args[k] })
			froms = append(froms, image)
			if strings.HasPrefix(image, "golang:") {
				require.Len(t, f, 3, in.rest)
				require.Equal(t, "AS", strings.ToUpper(f[1]))
				buildStage = f[2]
				goVersion := strings.TrimPrefix(image, "golang:")
				goVersion, _, _ = strings.Cut(goVersion, "-")
				require.True(t, strings.HasPrefix(goList(t, "-m", "-f", "{{.GoVersion}}")[0], goVersion+"."),
					"the build image's Go %s is not go.mod's", goVersion)
			}
			final = nil
		case "RUN":
			if i := strings.Index(in.rest, "go build "); i >= 0 {
				fields := strings.Fields(in.rest[i:])
				buildPkgs = packageArgs(fields)
				outDir = flagValue(fields, "-o")
			}
		}
		final = append(final, in)
	}
	require.Len(t, froms, 2, "a build stage and a final stage")
	require.NotEmpty(t, buildStage)
	require.False(t, strings.HasPrefix(froms[1], "golang:"), "the final image carries no Go toolchain")

	// The same packages as make build: compare what the patterns mean.
	makePkgs := makeBuildPackages(t)
	require.NotEmpty(t, buildPkgs)
	require.Equal(t, goList(t, makePkgs...), goList(t, buildPkgs...))
	binaries := goList(t, append([]string{"-f", "{{if eq .Name \"main\"}}{{.ImportPath}}{{end}}"}, buildPkgs...)...)
	for i, b := range binaries {
		binaries[i] = filepath.Base(b)
	}
	slices.Sort(binaries)
	require.Equal(t, []string{"enqueue", "rebound", "worker"}, binaries)

	var user string
	var copied bool
	var cmd []string
	for _, in := range final {
		switch in.keyword {
		case "COPY":
			f := strings.Fields(in.rest)
			if slices.Contains(f, "--from="+buildStage) {
				require.Equal(t, []string{"--from=" + buildStage, outDir, "/usr/local/bin/"}, f)
				copied = true
			}
		case "USER":
			user = in.rest
		case "CMD":
			require.NoError(t, json.Unmarshal([]byte(in.rest), &cmd), "CMD in exec form")
		case "ENTRYPOINT":
			t.Fatalf("no ENTRYPOINT: the command names the binary (worker, enqueue or rebound)")
		}
	}
	require.True(t, copied, "the final stage copies the build's %s", outDir)
	require.NotEmpty(t, user, "the final stage sets a USER")
	uid, _, _ := strings.Cut(user, ":")
	n, err := strconv.Atoi(uid)
	require.NoError(t, err, "USER %s: a numeric uid, so runAsNonRoot can verify it", user)
	require.NotZero(t, n, "USER %s is root", user)
	require.NotEmpty(t, cmd)
	require.Contains(t, binaries, cmd[0])
}

// .dockerignore keeps out of the build context nothing the build needs: the
// module files and every Go source and embedded file of the packages the
// image builds. The check can fail: with cmd/ ignored, it does.
func TestDockerignore(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile(filepath.Join(root, ".dockerignore"))
	require.NoError(t, err)
	patterns, err := ignorefile.ReadAll(strings.NewReader(string(raw)))
	require.NoError(t, err)

	// Every file of the module's own packages the binaries are built from.
	needed := []string{"go.mod", "go.sum"}
	absRoot, err := filepath.Abs(root)
	require.NoError(t, err)
	lines := goList(t, append([]string{"-deps", "-f", `{{if .Module}}{{if .Module.Main}}{{$d := .Dir}}{{range .GoFiles}}{{$d}}/{{.}} {{end}}{{range .EmbedFiles}}{{$d}}/{{.}} {{end}}{{end}}{{end}}`}, makeBuildPackages(t)...)...)
	for _, f := range lines {
		rel, err := filepath.Rel(absRoot, f)
		require.NoError(t, err)
		needed = append(needed, filepath.ToSlash(rel))
	}
	require.Greater(t, len(needed), 50)
	require.Contains(t, needed, "migrations/sql/001_foundation.sql")

	ignored := func(patterns []string) []string {
		pm, err := patternmatcher.New(patterns)
		require.NoError(t, err)
		var out []string
		for _, f := range needed {
			m, err := pm.MatchesOrParentMatches(f)
			require.NoError(t, err)
			if m {
				out = append(out, f)
			}
		}
		return out
	}
	require.Empty(t, ignored(patterns))
	require.Contains(t, ignored(append(patterns, "cmd")), "cmd/worker/main.go")

	// What it is for: binaries, the demo's files and secrets stay out.
	pm, err := patternmatcher.New(patterns)
	require.NoError(t, err)
	for _, f := range []string{".git/HEAD", "bin/worker", "worker", "enqueue", "rebound", ".env", ".demo/x"} {
		m, err := pm.MatchesOrParentMatches(f)
		require.NoError(t, err)
		require.True(t, m, "%s is not ignored", f)
	}
}
