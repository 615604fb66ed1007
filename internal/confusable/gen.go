//go:build ignore

// Gen writes tables.go, the data of package confusable, from the Unicode
// data files.
//
// Usage:
//
//	go run gen.go -ucd DIR -security DIR [-o tables.go]
//
// -ucd names a directory holding UnicodeData.txt, Scripts.txt,
// ScriptExtensions.txt, PropertyValueAliases.txt and
// DerivedCoreProperties.txt; -security names one holding confusables.txt.
// Both published layouts fit: https://www.unicode.org/Public/17.0.0/ucd and
// .../17.0.0/security, or unicodetools/data/ucd/17.0.0 and
// unicodetools/data/security/17.0.0 in github.com/unicode-org/unicodetools.
// The //go:generate line in confusable.go passes $UNICODE_DIR/ucd and
// $UNICODE_DIR/security.
//
// Every input must match the SHA-256 pinned in main, so the tables cannot
// change by accident: moving to a new Unicode version means updating
// unicodeVersion and the pins, which makes the upgrade a reviewed change.
//
// The program uses only the standard library, including for NFD (built
// from UnicodeData.txt), so its output depends on the input files alone and
// not on the Go toolchain or golang.org/x/text version that runs it.
package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"go/format"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// unicodeVersion is the version every input must be.
const unicodeVersion = "17.0.0"

// source is one pinned input file.
type source struct {
	dir    string // "ucd" or "security": which -flag directory holds it
	name   string
	sha256 string // hex SHA-256 of the exact published bytes
	date   string // from the file's "# Date:" header line, if it has one
	data   []byte
}

func main() {
	ucdDir := flag.String("ucd", "", "directory with the UCD files (UnicodeData.txt, Scripts.txt, ...)")
	secDir := flag.String("security", "", "directory with the UTS #39 file confusables.txt")
	out := flag.String("o", "tables.go", "output file")
	flag.Parse()
	if *ucdDir == "" || *secDir == "" || flag.NArg() != 0 {
		fmt.Fprintln(os.Stderr, "usage: go run gen.go -ucd DIR -security DIR [-o tables.go]")
		os.Exit(2)
	}

	// The pins are the SHA-256 of the files published under
	// https://www.unicode.org/Public/17.0.0/.
	sources := []*source{
		{dir: "security", name: "confusables.txt", sha256: "091c7f82fc39ef208faf8f94d29c244de99254675e09de163160c810d13ef22a"},
		{dir: "ucd", name: "Scripts.txt", sha256: "9f5e50d3abaee7d6ce09480f325c706f485ae3240912527e651954d2d6b035bf"},
		{dir: "ucd", name: "ScriptExtensions.txt", sha256: "ec2107e58825a1586acee8e0911ce18260394ac8b87e535ca325f1ccbeb06bc6"},
		{dir: "ucd", name: "PropertyValueAliases.txt", sha256: "64e9a5f76f7a1e8b5a47d6a1f9a26522a251208f5276bdfa1559dac7cf2e827a"},
		{dir: "ucd", name: "DerivedCoreProperties.txt", sha256: "24c7fed1195c482faaefd5c1e7eb821c5ee1fb6de07ecdbaa64b56a99da22c08"},
		{dir: "ucd", name: "UnicodeData.txt", sha256: "2e1efc1dcb59c575eedf5ccae60f95229f706ee6d031835247d843c11d96470c"},
	}
	for _, s := range sources {
		dir := *ucdDir
		if s.dir == "security" {
			dir = *secDir
		}
		if err := s.load(dir); err != nil {
			fmt.Fprintln(os.Stderr, "gen:", err)
			os.Exit(1)
		}
	}
	src, err := generate(sources)
	if err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
	if err := os.WriteFile(*out, src, 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}

var dateLine = regexp.MustCompile(`(?m)^# Date: (.+)$`)

// load reads the file, checks it against its pin and its version header, and
// records its date.
func (s *source) load(dir string) error {
	path := filepath.Join(dir, s.name)
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("%w (set UNICODE_DIR, or -ucd and -security, to a copy of https://www.unicode.org/Public/%s/)", err, unicodeVersion)
	}
	sum := sha256.Sum256(data)
	if got := hex.EncodeToString(sum[:]); got != s.sha256 {
		return fmt.Errorf("%s: sha256 %s, want %s: not the Unicode %s file (update the pins in gen.go to change versions)", path, got, s.sha256, unicodeVersion)
	}
	text := string(data)
	switch {
	case s.name == "confusables.txt":
		if !strings.Contains(text, "\n# Version: "+unicodeVersion+"\n") {
			return fmt.Errorf("%s: no %q header line", path, "# Version: "+unicodeVersion)
		}
	case s.name != "UnicodeData.txt": // the only UCD file without a header
		want := "# " + strings.TrimSuffix(s.name, ".txt") + "-" + unicodeVersion + ".txt\n"
		if !strings.HasPrefix(text, want) {
			return fmt.Errorf("%s: does not start with %q", path, want)
		}
	}
	if m := dateLine.FindStringSubmatch(text); m != nil {
		s.date = m[1]
	}
	s.data = data
	return nil
}

// line is one data line of a UCD-format file: its fields, trimmed, with the
// comment removed.
type line struct {
	no     int
	fields []string
}

// dataLines splits a UCD-format file into its data lines.
func dataLines(data []byte) []line {
	var lines []line
	for i, l := range strings.Split(string(data), "\n") {
		if j := strings.IndexByte(l, '#'); j >= 0 {
			l = l[:j]
		}
		l = strings.TrimSpace(l)
		if l == "" {
			continue
		}
		fields := strings.Split(l, ";")
		for k := range fields {
			fields[k] = strings.TrimSpace(fields[k])
		}
		lines = append(lines, line{no: i + 1, fields: fields})
	}
	return lines
}

func parseRune(s string) (rune, error) {
	v, err := strconv.ParseUint(s, 16, 32)
	if err != nil || v > utf8.MaxRune || 0xD800 <= v && v <= 0xDFFF {
		return 0, fmt.Errorf("bad code point %q", s)
	}
	return rune(v), nil
}

func parseRunes(s string) ([]rune, error) {
	var rs []rune
	for _, f := range strings.Fields(s) {
		r, err := parseRune(f)
		if err != nil {
			return nil, err
		}
		rs = append(rs, r)
	}
	if len(rs) == 0 {
		return nil, errors.New("no code points")
	}
	return rs, nil
}

// parseRange parses "0041" or "0041..005A". Unlike parseRune it accepts
// surrogates, which the UCD files list.
func parseRange(s string) (lo, hi rune, err error) {
	a, b, ok := strings.Cut(s, "..")
	if !ok {
		b = a
	}
	x, err1 := strconv.ParseUint(a, 16, 32)
	y, err2 := strconv.ParseUint(b, 16, 32)
	if err1 != nil || err2 != nil || x > y || y > utf8.MaxRune {
		return 0, 0, fmt.Errorf("bad range %q", s)
	}
	return rune(x), rune(y), nil
}

// ucd holds what NFD needs from UnicodeData.txt.
type ucd struct {
	ccc    map[rune]uint8
	decomp map[rune][]rune // canonical decompositions only
}

func parseUnicodeData(data []byte) (*ucd, error) {
	u := &ucd{ccc: map[rune]uint8{}, decomp: map[rune][]rune{}}
	for _, l := range dataLines(data) {
		if len(l.fields) != 15 {
			return nil, fmt.Errorf("UnicodeData.txt:%d: %d fields", l.no, len(l.fields))
		}
		// Ranges (<..., First>) have class 0 and no decomposition, and
		// parseRange accepts the surrogates they include.
		r, _, err := parseRange(l.fields[0])
		if err != nil {
			return nil, fmt.Errorf("UnicodeData.txt:%d: %v", l.no, err)
		}
		ccc, err := strconv.ParseUint(l.fields[3], 10, 8)
		if err != nil {
			return nil, fmt.Errorf("UnicodeData.txt:%d: %v", l.no, err)
		}
		if ccc != 0 {
			u.ccc[r] = uint8(ccc)
		}
		if d := l.fields[5]; d != "" && !strings.HasPrefix(d, "<") {
			if u.decomp[r], err = parseRunes(d); err != nil {
				return nil, fmt.Errorf("UnicodeData.txt:%d: %v", l.no, err)
			}
		}
	}
	if len(u.decomp) < 2000 || len(u.ccc) < 900 {
		return nil, errors.New("UnicodeData.txt: too few decompositions or combining classes")
	}
	return u, nil
}

// Hangul syllable decomposition constants, from The Unicode Standard,
// section 3.12.
const (
	sBase, lBase, vBase, tBase = 0xAC00, 0x1100, 0x1161, 0x11A7
	vCount, tCount             = 21, 28
	sCount                     = 19 * vCount * tCount
)

func isHangulSyllable(r rune) bool { return sBase <= r && r < sBase+sCount }

// decomposable reports whether r never occurs in NFD text.
func (u *ucd) decomposable(r rune) bool {
	_, ok := u.decomp[r]
	return ok || isHangulSyllable(r)
}

func (u *ucd) decompose(dst []rune, r rune) []rune {
	if isHangulSyllable(r) {
		s := r - sBase
		dst = append(dst, lBase+s/(vCount*tCount), vBase+s%(vCount*tCount)/tCount)
		if t := s % tCount; t != 0 {
			dst = append(dst, tBase+t)
		}
		return dst
	}
	if d, ok := u.decomp[r]; ok {
		for _, c := range d {
			dst = u.decompose(dst, c)
		}
		return dst
	}
	return append(dst, r)
}

// nfd returns the Unicode Normalization Form D of s (UAX #15).
func (u *ucd) nfd(s []rune) []rune {
	var out []rune
	for _, r := range s {
		out = u.decompose(out, r)
	}
	// Canonical ordering: a stable sort of each run of non-starters by
	// combining class.
	for i := 1; i < len(out); i++ {
		for j := i; j > 0; j-- {
			a, b := u.ccc[out[j-1]], u.ccc[out[j]]
			if b == 0 || a <= b {
				break
			}
			out[j-1], out[j] = out[j], out[j-1]
		}
	}
	return out
}

type runeRange struct{ lo, hi rune }

func inRanges(rs []runeRange, r rune) bool {
	for _, x := range rs {
		if x.lo <= r && r <= x.hi {
			return true
		}
	}
	return false
}

func parseDefaultIgnorables(data []byte) ([]runeRange, error) {
	var rs []runeRange
	for _, l := range dataLines(data) {
		if len(l.fields) < 2 || l.fields[1] != "Default_Ignorable_Code_Point" {
			continue
		}
		lo, hi, err := parseRange(l.fields[0])
		if err != nil {
			return nil, fmt.Errorf("DerivedCoreProperties.txt:%d: %v", l.no, err)
		}
		if n := len(rs); n > 0 && rs[n-1].hi+1 == lo {
			rs[n-1].hi = hi
		} else {
			rs = append(rs, runeRange{lo, hi})
		}
	}
	if len(rs) == 0 {
		return nil, errors.New("DerivedCoreProperties.txt: no Default_Ignorable_Code_Point")
	}
	// Skeleton's ASCII fast path skips the default-ignorable check.
	if rs[0].lo < utf8.RuneSelf {
		return nil, fmt.Errorf("default ignorable ASCII character U+%04X", rs[0].lo)
	}
	return rs, nil
}

var totalLine = regexp.MustCompile(`(?m)^# total: (\d+)$`)

// parseConfusables returns the confusables.txt mapping from each source
// character to its prototype.
func parseConfusables(data []byte) (map[rune][]rune, error) {
	m := map[rune][]rune{}
	for _, l := range dataLines(data) {
		if len(l.fields) != 3 {
			return nil, fmt.Errorf("confusables.txt:%d: %d fields", l.no, len(l.fields))
		}
		// Since Unicode 8 the file has only the MA (mixed-script, any-case)
		// table; anything else would need a decision on what it means.
		if l.fields[2] != "MA" {
			return nil, fmt.Errorf("confusables.txt:%d: type %q, want MA", l.no, l.fields[2])
		}
		from, err := parseRune(l.fields[0])
		if err != nil {
			return nil, fmt.Errorf("confusables.txt:%d: %v", l.no, err)
		}
		to, err := parseRunes(l.fields[1])
		if err != nil {
			return nil, fmt.Errorf("confusables.txt:%d: %v", l.no, err)
		}
		if _, dup := m[from]; dup {
			return nil, fmt.Errorf("confusables.txt:%d: second mapping for U+%04X", l.no, from)
		}
		m[from] = to
	}
	if t := totalLine.FindSubmatch(data); t == nil || string(t[1]) != strconv.Itoa(len(m)) {
		return nil, fmt.Errorf("confusables.txt: parsed %d mappings, file's total line says %q", len(m), t)
	}
	return m, nil
}

// prototype is a reachable source character and its closed prototype.
type prototype struct {
	from   rune
	to     string
	closed bool // to differs from NFD of the confusables.txt target
}

// prototypes returns, sorted by source, the mappings Skeleton can use.
//
// UTS #39 computes a skeleton as NFD, removal of Default_Ignorable_Code_Point
// characters, mapping of each character to its prototype, and NFD again.
// Two consequences shape the table:
//
//   - Sources that are default ignorable or have a canonical decomposition
//     never reach the mapping step, so they are left out.
//   - In the 17.0.0 data a few prototypes, once put in NFD, contain
//     characters that have prototypes themselves (U+01C6 → "dž", whose NFD
//     has U+030C, which maps to U+0306), so one pass is not idempotent and
//     "ǆ" would not match "dž". Each prototype is therefore closed: it is
//     replaced by its own skeleton until that no longer changes it. The
//     Unicode 18 draft data (unicodetools, data/security/dev) changes the
//     same entries, most of them to exactly these closed prototypes.
func prototypes(u *ucd, m map[rune][]rune, ignorable []runeRange) ([]prototype, error) {
	skeleton := func(s []rune) []rune {
		var mapped []rune
		for _, r := range u.nfd(s) {
			if inRanges(ignorable, r) {
				continue
			}
			if t, ok := m[r]; ok {
				mapped = append(mapped, t...)
			} else {
				mapped = append(mapped, r)
			}
		}
		return u.nfd(mapped)
	}
	var ps []prototype
	for from, to := range m {
		if u.decomposable(from) || inRanges(ignorable, from) {
			continue
		}
		closed := u.nfd(to)
		for i := 0; ; i++ {
			next := skeleton(closed)
			if slices.Equal(next, closed) {
				break
			}
			if i == 10 {
				return nil, fmt.Errorf("prototype of U+%04X does not converge", from)
			}
			closed = next
		}
		if len(closed) == 1 && closed[0] == from {
			return nil, fmt.Errorf("U+%04X maps to itself", from)
		}
		ps = append(ps, prototype{from, string(closed), !slices.Equal(closed, u.nfd(to))})
	}
	slices.SortFunc(ps, func(a, b prototype) int { return int(a.from - b.from) })
	return ps, nil
}

// scriptData is what mixed-script detection needs: for every code point, its
// Script_Extensions augmented as UTS #39 section 5.1 says.
type scriptData struct {
	names  []string   // real scripts, sorted; index = bit
	sets   [][]uint64 // distinct augmented sets; sets[0] = every script
	labels []string   // for each set, a comment naming its scripts
	ranges []scriptRange
	words  int
	latin  int
}

type scriptRange struct {
	lo  rune
	set int
}

// The augmenting pseudo-scripts of UTS #39 section 5.1, after the real
// scripts in bit order.
var pseudoScripts = []string{"Han_with_Bopomofo", "Japanese", "Korean"}

func parseScripts(scriptsTxt, extTxt, aliasesTxt []byte) (*scriptData, error) {
	long := map[string]string{} // short → long Script value names
	for _, l := range dataLines(aliasesTxt) {
		if l.fields[0] == "sc" && len(l.fields) >= 3 {
			long[l.fields[1]] = l.fields[2]
		}
	}
	if long["Latn"] != "Latin" || long["Zyyy"] != "Common" || long["Zinh"] != "Inherited" {
		return nil, errors.New("PropertyValueAliases.txt: sc aliases missing")
	}

	// sc and scx for every code point. The @missing value of Scripts.txt is
	// Unknown; that of ScriptExtensions.txt is the code point's Script.
	sc := make([]string, utf8.MaxRune+1)
	for i := range sc {
		sc[i] = "Unknown"
	}
	for _, l := range dataLines(scriptsTxt) {
		lo, hi, err := parseRange(l.fields[0])
		if err != nil || len(l.fields) != 2 {
			return nil, fmt.Errorf("Scripts.txt:%d: bad line", l.no)
		}
		for r := lo; r <= hi; r++ {
			sc[r] = l.fields[1]
		}
	}
	scx := make([][]string, utf8.MaxRune+1)
	for _, l := range dataLines(extTxt) {
		lo, hi, err := parseRange(l.fields[0])
		if err != nil || len(l.fields) != 2 {
			return nil, fmt.Errorf("ScriptExtensions.txt:%d: bad line", l.no)
		}
		var names []string
		for _, short := range strings.Fields(l.fields[1]) {
			n, ok := long[short]
			if !ok {
				return nil, fmt.Errorf("ScriptExtensions.txt:%d: unknown script %q", l.no, short)
			}
			names = append(names, n)
		}
		for r := lo; r <= hi; r++ {
			scx[r] = names
		}
	}

	// Fill in the default Script_Extensions, sharing one slice per script.
	single := map[string][]string{}
	for r := range sc {
		if scx[r] == nil {
			if single[sc[r]] == nil {
				single[sc[r]] = []string{sc[r]}
			}
			scx[r] = single[sc[r]]
		}
	}

	// Common and Inherited stand for every script, so they get no bit.
	seen := map[string]bool{"Unknown": true}
	for _, x := range scx {
		for _, n := range x {
			seen[n] = true
		}
	}
	delete(seen, "Common")
	delete(seen, "Inherited")
	d := &scriptData{}
	for n := range seen {
		d.names = append(d.names, n)
	}
	slices.Sort(d.names)
	bit := map[string]int{}
	for i, n := range append(slices.Clone(d.names), pseudoScripts...) {
		bit[n] = i
	}
	d.latin = bit["Latin"]
	d.words = (len(bit) + 63) / 64

	all := make([]uint64, d.words)
	for i := range len(bit) {
		all[i/64] |= 1 << (i % 64)
	}
	d.sets = [][]uint64{all}
	d.labels = []string{"Common and Inherited: every script"}
	index := map[string]int{fmt.Sprint(all): 0}
	for r := range sc {
		set := all
		if x := scx[r]; len(x) > 1 || x[0] != "Common" && x[0] != "Inherited" {
			set = make([]uint64, d.words)
			add := func(n string) { set[bit[n]/64] |= 1 << (bit[n] % 64) }
			for _, n := range x {
				if n == "Common" || n == "Inherited" {
					return nil, fmt.Errorf("U+%04X: Script_Extensions %v mixes Common or Inherited with scripts", r, x)
				}
				add(n)
				switch n { // the augmentation of UTS #39 section 5.1
				case "Han":
					add("Han_with_Bopomofo")
					add("Japanese")
					add("Korean")
				case "Hiragana", "Katakana":
					add("Japanese")
				case "Hangul":
					add("Korean")
				case "Bopomofo":
					add("Han_with_Bopomofo")
				}
			}
		}
		key := fmt.Sprint(set)
		i, ok := index[key]
		if !ok {
			i = len(d.sets)
			index[key] = i
			d.sets = append(d.sets, set)
			d.labels = append(d.labels, strings.Join(scx[r], ", "))
		}
		if n := len(d.ranges); n == 0 || d.ranges[n-1].set != i {
			d.ranges = append(d.ranges, scriptRange{rune(r), i})
		}
	}
	if len(d.sets) > 1<<16 {
		return nil, fmt.Errorf("%d script sets do not fit a uint16", len(d.sets))
	}
	return d, nil
}

func generate(sources []*source) ([]byte, error) {
	file := map[string][]byte{}
	for _, s := range sources {
		file[s.name] = s.data
	}
	u, err := parseUnicodeData(file["UnicodeData.txt"])
	if err != nil {
		return nil, err
	}
	ignorable, err := parseDefaultIgnorables(file["DerivedCoreProperties.txt"])
	if err != nil {
		return nil, err
	}
	m, err := parseConfusables(file["confusables.txt"])
	if err != nil {
		return nil, err
	}
	ps, err := prototypes(u, m, ignorable)
	if err != nil {
		return nil, err
	}
	sd, err := parseScripts(file["Scripts.txt"], file["ScriptExtensions.txt"], file["PropertyValueAliases.txt"])
	if err != nil {
		return nil, err
	}

	var b bytes.Buffer
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	p("// Code generated by gen.go from the Unicode data files; DO NOT EDIT.\n")
	p("//\n")
	p("// To regenerate, set UNICODE_DIR to a copy of\n")
	p("// https://www.unicode.org/Public/%s/ and run \"go generate\" in this\n", unicodeVersion)
	p("// directory; gen.go explains the flags and the checks on the inputs.\n")
	p("//\n")
	p("// Inputs, all Unicode %s:\n", unicodeVersion)
	p("//\n")
	for _, s := range sources {
		date := s.date
		if date == "" {
			date = "(no date line)"
		}
		p("//\t%s/%s, %s\n//\t\tsha256 %s\n", s.dir, s.name, date, s.sha256)
	}
	p("//\n")
	p("// The input files are © 2025 Unicode®, Inc., as their headers say; the\n")
	p("// data derived from them is used under the Unicode License V3, whose\n")
	p("// notice is in LICENSE-UNICODE in this directory.\n\n")
	p("package confusable\n\n")

	p("// UnicodeVersion is the version of the Unicode data in this package's\n")
	p("// tables: confusables.txt of UTS #39 and the Unicode Character Database.\n")
	p("const UnicodeVersion = %q\n\n", unicodeVersion)

	// ASCII sources as a bitmap, for Skeleton's fast path.
	var ascii [2]uint64
	for _, x := range ps {
		if x.from < utf8.RuneSelf {
			ascii[x.from/64] |= 1 << (x.from % 64)
		}
	}
	p("// asciiSources has bit c set (word c/64, bit c%%64) if the ASCII character c\n")
	p("// has a prototype.\n")
	p("var asciiSources = [2]uint64{%#016x, %#016x}\n\n", ascii[0], ascii[1])

	// Prototype strings, deduplicated and concatenated.
	var text strings.Builder
	offset := map[string]int{}
	var closed []string
	for _, x := range ps {
		if _, ok := offset[x.to]; !ok {
			offset[x.to] = text.Len()
			text.WriteString(x.to)
		}
		if x.closed {
			closed = append(closed, fmt.Sprintf("U+%04X", x.from))
		}
	}
	if text.Len() > 1<<16 {
		return nil, fmt.Errorf("prototype text is %d bytes, more than a uint16 offset reaches", text.Len())
	}
	p("// prototypes maps each source character of confusables.txt to its\n")
	p("// prototype, prototypeText[off:off+n], sorted by source. Sources that\n")
	p("// cannot occur after NFD (they have a canonical decomposition) or that\n")
	p("// are default ignorable are left out (%d of %d). Prototypes are closed\n", len(m)-len(ps), len(m))
	p("// under the skeleton mapping and in NFD; closing changed %d:\n", len(closed))
	for i := 0; i < len(closed); i += 8 {
		p("// %s\n", strings.Join(closed[i:min(i+8, len(closed))], " "))
	}
	p("var prototypes = [%d]prototype{\n", len(ps))
	for i, x := range ps {
		p("{%#x, %d, %d},", x.from, offset[x.to], len(x.to))
		if i%6 == 5 || i == len(ps)-1 {
			p("\n")
		}
	}
	p("}\n\n")
	p("// prototypeText holds the distinct prototypes, in order of first use.\n")
	p("const prototypeText = \"\" +\n")
	t := text.String()
	for len(t) > 0 {
		// Cut at a rune boundary near 40 bytes so lines stay short.
		n := min(len(t), 40)
		for n < len(t) && !utf8.RuneStart(t[n]) {
			n++
		}
		p("\t%s", strconv.QuoteToASCII(t[:n]))
		t = t[n:]
		if len(t) > 0 {
			p(" +\n")
		}
	}
	p("\n\n")

	p("// defaultIgnorables are the Default_Ignorable_Code_Point ranges, which\n")
	p("// Skeleton removes.\n")
	p("var defaultIgnorables = [...]runeRange{\n")
	for _, r := range ignorable {
		p("{%#x, %#x},\n", r.lo, r.hi)
	}
	p("}\n\n")

	p("// Script bits: the real scripts in scriptNames order, then the\n")
	p("// pseudo-scripts of UTS #39 section 5.1 that augment sets holding Han,\n")
	p("// Hiragana, Katakana, Hangul or Bopomofo.\n")
	p("const (\n")
	p("numScripts = %d // real scripts\n", len(sd.names))
	p("latinScript = %d\n", sd.latin)
	p("hanWithBopomofoScript = %d\n", len(sd.names))
	p("japaneseScript = %d\n", len(sd.names)+1)
	p("koreanScript = %d\n", len(sd.names)+2)
	p("scriptWords = %d // uint64s in a scriptSet\n", sd.words)
	p(")\n\n")
	p("// scriptNames are the Script property value names (as in\n")
	p("// PropertyValueAliases.txt and Go's unicode.Scripts), sorted; a name's\n")
	p("// index is its bit in a scriptSet. Common and Inherited have no bit: they\n")
	p("// stand for every script.\n")
	p("var scriptNames = [numScripts]string{\n")
	for _, n := range sd.names {
		p("%q,\n", n)
	}
	p("}\n\n")
	p("// scriptSets are the distinct augmented Script_Extensions sets; set 0 is\n")
	p("// every script, the set of Common and Inherited characters.\n")
	p("var scriptSets = [%d]scriptSet{\n", len(sd.sets))
	for i, s := range sd.sets {
		p("{")
		for j, w := range s {
			if j > 0 {
				p(", ")
			}
			p("%#x", w)
		}
		p("}, // %d: %s\n", i, sd.labels[i])
	}
	p("}\n\n")
	p("// scriptRanges gives the scriptSets index of every code point: range i\n")
	p("// runs from scriptRanges[i].lo to scriptRanges[i+1].lo-1.\n")
	p("var scriptRanges = [%d]scriptRange{\n", len(sd.ranges))
	for i, r := range sd.ranges {
		p("{%#x, %d},", r.lo, r.set)
		if i%6 == 5 || i == len(sd.ranges)-1 {
			p("\n")
		}
	}
	p("}\n")

	src, err := format.Source(b.Bytes())
	if err != nil {
		return nil, fmt.Errorf("formatting output: %v", err)
	}
	fmt.Fprintf(os.Stderr, "gen: %d prototypes (%d closed, %d sources unreachable), %d bytes of prototype text; %d scripts, %d script sets, %d ranges\n",
		len(ps), len(closed), len(m)-len(ps), text.Len(), len(sd.names), len(sd.sets), len(sd.ranges))
	return src, nil
}
