package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"unicode"
)

// The front page and the pages under docs/ link to each other and to the
// repository's files by relative links, many of them to a heading's
// anchor; moving a section breaks them silently. Every such link must
// reach a file that exists and, with an anchor, a heading of that file.
func TestDocLinksResolve(t *testing.T) {
	t.Parallel()
	pages, err := filepath.Glob(filepath.Join("..", "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	pages = append([]string{filepath.Join("..", "README.md")}, pages...)
	links := 0
	for _, page := range pages {
		n, problems := checkLinks(page)
		links += n
		for _, p := range problems {
			t.Error(p)
		}
	}
	if links < 50 {
		t.Errorf("found %d relative links in %v; the link parser is likely broken", links, pages)
	}
}

// The check must catch what it is for: a missing file, a missing heading
// in another page or in the same page, and a link into a code block.
func TestDocLinksCatchBrokenLinks(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, text string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	write("other.md", "# Other page\n\n## Behind a reverse proxy\n\n```sh\n## not a heading\n```\n\n## `chatd` flags\n\n## Go client\n\n## Go client\n")
	page := write("page.md", strings.Join([]string{
		"# Page",
		"## The API",
		"[ok](other.md#behind-a-reverse-proxy) [ok](other.md) [ok](#the-api) [ok](other.md#chatd-flags) [ok](other.md#go-client-1)",
		"`[in code](nowhere.md)`",
		"```",
		"[in a block](nowhere.md)",
		"```",
		"[gone](missing.md)",
		"[no heading](other.md#limits)",
		"[not here](#limits)",
		"[a code block's line](other.md#not-a-heading)",
		"![image](missing.png)",
		"[third](other.md#go-client-2)",
	}, "\n"))
	n, problems := checkLinks(page)
	if n != 11 {
		t.Errorf("counted %d links; want 11", n)
	}
	want := []string{"missing.md", "other.md#limits", "](#limits)", "other.md#not-a-heading", "missing.png", "other.md#go-client-2"}
	if len(problems) != len(want) {
		t.Errorf("got %d problems; want %d:\n%s", len(problems), len(want), strings.Join(problems, "\n"))
	}
	for _, w := range want {
		found := false
		for _, p := range problems {
			found = found || strings.Contains(p, w)
		}
		if !found {
			t.Errorf("no problem reported for %s:\n%s", w, strings.Join(problems, "\n"))
		}
	}
}

// The front page tells a newcomer where a message goes from one stream to
// the others by naming functions of server/, each before the file that
// holds it (`readLoop` and `handle` (`service.go`)); a rename or a move
// there must not leave it pointing at nothing. Every name in code in that
// section is declared in the next file it names, or is a field of the API
// (rejected, batch).
func TestReadmeNamesWhereAMessageGoes(t *testing.T) {
	t.Parallel()
	readme, err := os.ReadFile(filepath.Join("..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(readme), "\n## Where a message goes\n")
	if !ok {
		t.Fatal(`README.md has no section "Where a message goes"`)
	}
	section, _, _ = strings.Cut(section, "\n## ")
	proto, err := os.ReadFile(filepath.Join("..", "proto", "chat", "v1", "chat.proto"))
	if err != nil {
		t.Fatal(err)
	}
	isField := func(name string) bool {
		return regexp.MustCompile(`(?m)^\s+\w+ ` + regexp.QuoteMeta(name) + ` = \d+;`).Match(proto)
	}
	seen := map[string]bool{}
	var pending []string
	funcs := 0
	for _, m := range codeSpan.FindAllString(section, -1) {
		name := strings.Trim(m, "`")
		if name == "server/" {
			continue
		}
		if !strings.HasSuffix(name, ".go") {
			if !seen[name] {
				pending = append(pending, name)
			}
			seen[name] = true
			continue
		}
		src, err := os.ReadFile(filepath.Join("..", "server", name))
		if err != nil {
			t.Errorf("README's Where a message goes names %s, which server/ does not have", name)
		}
		for _, fn := range pending {
			recv, f, isMethod := strings.Cut(fn, ".")
			if !isMethod {
				recv, f = `\w+`, fn
			}
			decl := regexp.MustCompile(`(?m)^func (\(\w+ \*?` + recv + `\) )?` + regexp.QuoteMeta(f) + `[(\[]`)
			switch {
			case decl.Match(src):
				funcs++
			case !isField(fn):
				t.Errorf("README's Where a message goes names %s before %s, which does not declare it", fn, name)
			}
		}
		pending = nil
	}
	for _, name := range pending {
		if !isField(name) {
			t.Errorf("README's Where a message goes names %s, with no file after it, and it is no field of chat.proto", name)
		}
	}
	if funcs < 8 {
		t.Errorf("README's Where a message goes names %d functions with their files; want the path from readLoop to writeLoop", funcs)
	}
}

var (
	mdLink     = regexp.MustCompile(`\]\(([^)\s]+)(?:\s+"[^"]*")?\)`)
	codeSpan   = regexp.MustCompile("`[^`]*`")
	mdHeading  = regexp.MustCompile(`^#{1,6}\s+(.*?)\s*#*\s*$`)
	fenceStart = regexp.MustCompile("^\\s*(```|~~~)")
)

// checkLinks reads a markdown file and returns how many relative links it
// has and what is wrong with them.
func checkLinks(page string) (int, []string) {
	data, err := os.ReadFile(page)
	if err != nil {
		return 0, []string{err.Error()}
	}
	var problems []string
	n := 0
	inFence := false
	for i, line := range strings.Split(string(data), "\n") {
		if fenceStart.MatchString(line) {
			inFence = !inFence
			continue
		}
		if inFence {
			continue
		}
		for _, m := range mdLink.FindAllStringSubmatch(codeSpan.ReplaceAllString(line, ""), -1) {
			target := m[1]
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			n++
			if err := checkLink(page, target); err != nil {
				problems = append(problems, fmt.Sprintf("%s:%d: link %s: %v", page, i+1, m[0], err))
			}
		}
	}
	return n, problems
}

func checkLink(page, target string) error {
	path, anchor, _ := strings.Cut(target, "#")
	file := page
	if path != "" {
		file = filepath.Join(filepath.Dir(page), filepath.FromSlash(path))
		info, err := os.Stat(file)
		if err != nil {
			return fmt.Errorf("no such file %s", file)
		}
		if info.IsDir() {
			if anchor != "" {
				return fmt.Errorf("an anchor into the directory %s", file)
			}
			return nil
		}
	}
	if anchor == "" {
		return nil
	}
	if !strings.HasSuffix(file, ".md") {
		return fmt.Errorf("an anchor into %s, which is not markdown", file)
	}
	anchors, err := headingAnchors(file)
	if err != nil {
		return err
	}
	if !anchors[anchor] {
		return fmt.Errorf("%s has no heading with the anchor #%s", file, anchor)
	}
	return nil
}

// headingAnchors gives the anchors GitHub makes for a markdown file's
// headings: lower case, punctuation dropped, spaces made '-', and a
// heading met again suffixed -1, -2, ….
func headingAnchors(file string) (map[string]bool, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	anchors := map[string]bool{}
	seen := map[string]int{}
	inFence := false
	for _, line := range strings.Split(string(data), "\n") {
		if fenceStart.MatchString(line) {
			inFence = !inFence
			continue
		}
		m := mdHeading.FindStringSubmatch(line)
		if inFence || m == nil {
			continue
		}
		slug := githubSlug(m[1])
		if k := seen[slug]; k > 0 {
			anchors[fmt.Sprintf("%s-%d", slug, k)] = true
		} else {
			anchors[slug] = true
		}
		seen[slug]++
	}
	return anchors, nil
}

func githubSlug(heading string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(heading) {
		switch {
		case r == ' ':
			b.WriteRune('-')
		case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsNumber(r) || unicode.Is(unicode.M, r):
			b.WriteRune(r)
		}
	}
	return b.String()
}
