package confusable_test

import (
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"

	"github.com/chatd/chatd/internal/confusable"
)

// The server passes case-folded names, so most cases are lower case; the
// comments give the code points that are hard to see.
var confusableTests = []struct {
	x, y string
	want bool
}{
	{"аlice", "alice", true},       // U+0430 CYRILLIC SMALL LETTER A
	{"αlice", "alice", true},       // U+03B1 GREEK SMALL LETTER ALPHA, Α case-folded
	{"Αlice", "Alice", true},       // U+0391 GREEK CAPITAL LETTER ALPHA
	{"alıce", "alice", true},       // U+0131 LATIN SMALL LETTER DOTLESS I
	{"bоb", "bob", true},           // U+043E CYRILLIC SMALL LETTER O
	{"pаypаl", "paypal", true},     // two U+0430
	{"раураl", "paypal", true},     // all Cyrillic but the l
	{"ѕсоре", "scope", true},       // all Cyrillic
	{"ａｌｉｃｅ", "alice", true},       // fullwidth, U+FF41...
	{"𝐚𝐥𝐢𝐜𝐞", "alice", true},       // mathematical bold
	{"rn", "m", true},              // the data maps m to rn
	{"rnary", "mary", true},        //
	{"0", "O", true},               // digit zero and capital O
	{"1", "l", true},               // digit one and small L
	{"I", "l", true},               // capital I and small L
	{"|", "l", true},               //
	{"ali\u200bce", "alice", true}, // ZERO WIDTH SPACE is default ignorable
	{"ali\u00adce", "alice", true}, // SOFT HYPHEN is default ignorable
	{"alice\ufe0f", "alice", true}, // VARIATION SELECTOR-16 is default ignorable
	{"e\u0301", "é", true},         // NFD
	{"ǆ", "dž", true},              // U+01C6; needs the closed prototype
	{"ҋ", "й̦", true},              // U+048B; needs the closed prototype
	{"ﺁ", "ا\u0653", true},         // U+FE81; needs the closed prototype
	{"alice", "alice", true},       //
	{"", "", true},                 //
	{"alice", "bob", false},        //
	{"anna", "anne", false},        //
	{"alice", "alice2", false},     //
	{"0", "o", false},              // zero is confusable with O, not with o
	{"1", "i", false},              // one is confusable with l, not with i
	{"i", "l", false},              //
	{"alice", "аlicе", true},       // two Cyrillic letters
	{"bob", "bоb\u0301", false},    // a visible accent makes a difference
	{"straße", "strasse", false},   // UTS #39 is not case folding
	{"ｍ", "m", false},              // data gap: U+FF4D has no prototype
	{"аlice", "alice\u200d", true}, // ZERO WIDTH JOINER is default ignorable
}

func TestConfusable(t *testing.T) {
	for _, tt := range confusableTests {
		if got := confusable.Confusable(tt.x, tt.y); got != tt.want {
			t.Errorf("Confusable(%+q, %+q) = %v, want %v; skeletons %+q and %+q",
				tt.x, tt.y, got, tt.want, confusable.Skeleton(tt.x), confusable.Skeleton(tt.y))
		}
		if got := confusable.Skeleton(tt.x) == confusable.Skeleton(tt.y); got != tt.want {
			t.Errorf("Skeleton(%+q) == Skeleton(%+q) is %v, want %v", tt.x, tt.y, got, tt.want)
		}
	}
}

// Names unique whatever their case are compared by their caseless
// skeletons: as typed, so that capitals count (I looks like l, 0 like O),
// and with every case form (B0B looks like BOB, which is bob).
func TestCaselessSkeleton(t *testing.T) {
	for _, tt := range []struct {
		x, y string
		want bool
	}{
		{"aIice", "alice", true},   // capital I, small L: both orders
		{"alice", "aIice", true},   //
		{"AIice", "alice", true},   // looks like Alice, which is alice
		{"IIama", "llama", true},   //
		{"wiII", "will", true},     //
		{"paypaI", "paypal", true}, //
		{"B0B", "BOB", true},       // zero and capital O: both orders
		{"BOB", "B0B", true},       //
		{"b0b", "bob", true},       // b0b is B0B too, which looks like BOB
		{"rnary", "mary", true},    // rn and m: both orders
		{"mark", "rnark", true},    //
		{"rnary", "MARY", true},    // MARY is mary
		{"ALICE", "alice", false},  // ALICE's I is l: compare its folded form too (the server does)
		{"wiii", "will", false},    // small i is not l
		{"alice", "alicia", false}, //
		{"bob", "bobby", false},    //
		{"anna", "anne", false},    //
	} {
		got := confusable.CaselessSkeleton(tt.x) == confusable.CaselessSkeleton(tt.y)
		if got != tt.want {
			t.Errorf("CaselessSkeleton(%+q) == CaselessSkeleton(%+q) is %v, want %v; they are %+q and %+q",
				tt.x, tt.y, got, tt.want, confusable.CaselessSkeleton(tt.x), confusable.CaselessSkeleton(tt.y))
		}
	}
}

// TestSkeleton pins down skeletons that the tests above only compare, so a
// change in the data shows up here first.
func TestSkeleton(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"alice", "alice"},
		{"", ""},
		{"m", "rn"},
		{"emma", "ernrna"},
		{"0", "O"},
		{"o", "o"},
		{"1", "l"},
		{"I", "l"},
		{"l", "l"},
		{"i", "i"},
		{"%", "º/₀"},
		{"\"", "''"},
		{"`", "'"},
		{"аlice", "alice"},
		{"ı", "i"},
		{"é", "e\u0301"},
		{"ǆ", "dz\u0306"},          // not "dz\u030C": U+030C maps to U+0306
		{"ﺁ", "l\u0303"},           // U+FE81 → U+0622 → alef + U+0653 → l + U+0303
		{"a\u200bb", "ab"},         // default ignorable removed
		{"a\xffb", "a\ufffdb"},     // invalid UTF-8
		{"a\xff\xfeb", "a\ufffdb"}, // one U+FFFD per run of invalid bytes
	} {
		if got := confusable.Skeleton(tt.in); got != tt.want {
			t.Errorf("Skeleton(%+q) = %+q, want %+q", tt.in, got, tt.want)
		}
	}
}

// TestPrototypes checks the generated table: sorted, every source maps to
// its prototype, and every prototype is its own skeleton (the table is
// closed), which is what makes Skeleton idempotent.
func TestPrototypes(t *testing.T) {
	var prev rune = -1
	n := 0
	confusable.Prototypes(func(from rune, to string) {
		n++
		if from <= prev {
			t.Errorf("prototypes not sorted: U+%04X after U+%04X", from, prev)
		}
		prev = from
		if !norm.NFD.IsNormalString(string(from)) || confusable.IsDefaultIgnorable(from) {
			t.Errorf("U+%04X is in the table but cannot reach the mapping step", from)
		}
		if to == "" || !utf8.ValidString(to) {
			t.Errorf("U+%04X: bad prototype %+q", from, to)
		}
		if got := confusable.Skeleton(string(from)); got != to {
			t.Errorf("Skeleton(U+%04X) = %+q, want its prototype %+q", from, got, to)
		}
		if got := confusable.Skeleton(to); got != to {
			t.Errorf("prototype of U+%04X is %+q, whose skeleton is %+q", from, to, got)
		}
	})
	// 6565 mappings in confusables.txt 17.0.0, less 1066 unreachable ones.
	if n != 5499 {
		t.Errorf("%d prototypes, want 5499", n)
	}
}

// TestASCII checks the fast path of Skeleton against the table: an ASCII
// character is its own skeleton exactly when it has no prototype.
func TestASCII(t *testing.T) {
	sources := map[rune]bool{}
	confusable.Prototypes(func(from rune, _ string) {
		if from < utf8.RuneSelf {
			sources[from] = true
		}
	})
	if got := len(sources); got != 8 {
		t.Errorf("%d ASCII sources, want 8 (\" %% 0 1 I ` m |)", got)
	}
	for c := rune(0); c < utf8.RuneSelf; c++ {
		s := string(c)
		if got := confusable.Skeleton(s); (got == s) == sources[c] {
			t.Errorf("Skeleton(%+q) = %+q, but U+%04X has a prototype: %v", s, got, c, sources[c])
		}
		if confusable.IsDefaultIgnorable(c) {
			t.Errorf("U+%04X is default ignorable; the ASCII fast path assumes none is", c)
		}
	}
}

func TestSkeletonAllocs(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want float64
	}{
		{"alice_wonderland", 0},            // ASCII without sources: s itself
		{"maximilian_mustermann", 1},       // the result only
		{"pаypаl_security", 1},             //
		{"田中さん", 1},                        //
		{strings.Repeat("ａ", 32), 1},       // 96 bytes of input, fits the stack buffer
		{strings.Repeat("é", 32) + "m", 3}, // not NFD: normalizing costs two more
	} {
		if got := testing.AllocsPerRun(100, func() { confusable.Skeleton(tt.in) }); got > tt.want {
			t.Errorf("Skeleton(%+q) allocates %v times, want at most %v", tt.in, got, tt.want)
		}
	}
}

func FuzzSkeleton(f *testing.F) {
	for _, tt := range confusableTests {
		f.Add(tt.x)
		f.Add(tt.y)
	}
	for _, s := range []string{
		"\xff", "a\xc3", "\u0301", "a\u0301\u0327\u034f\u0316", "㈝", "ﻵ", "ﮤ",
		"Ǆ", "ǅ", "가각", "ᄀ\u1161\u11a8", "\U0001d7ce", strings.Repeat("m", 200),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		k := confusable.Skeleton(s)
		if !utf8.ValidString(k) {
			t.Fatalf("Skeleton(%+q) = %+q, not valid UTF-8", s, k)
		}
		if k2 := confusable.Skeleton(k); k2 != k {
			t.Fatalf("Skeleton(%+q) = %+q, but Skeleton of that is %+q", s, k, k2)
		}
		if !norm.NFD.IsNormalString(k) {
			t.Fatalf("Skeleton(%+q) = %+q, not in NFD", s, k)
		}
		if utf8.ValidString(s) {
			// Canonically equivalent strings have the same skeleton.
			for _, form := range []norm.Form{norm.NFC, norm.NFD} {
				if k2 := confusable.Skeleton(form.String(s)); k2 != k {
					t.Fatalf("Skeleton(%+q) = %+q, but for its form %v %+q", s, k, form, k2)
				}
			}
		}
	})
}

func BenchmarkSkeleton(b *testing.B) {
	for _, bb := range []struct{ name, in string }{
		{"ascii", "alice_wonderland42"},               // 18, fast path
		{"ascii-m", "maximilian_mustermann"},          // 21, has sources
		{"cyrillic", "pаypаl_security_team"},          // 20, two U+0430
		{"japanese", "田中さん_tanaka_taro"},              // 17
		{"long", "the_quick_brown_fox_jumps_over_1"},  // 32
		{"accents", "élodie_müller_françois_žižek_1"}, // 30, NFD expands
	} {
		b.Run(bb.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				confusable.Skeleton(bb.in)
			}
		})
	}
}

// TestDataFacts records surprises in confusables.txt 17.0.0 that callers
// should know about; see the package documentation.
func TestDataFacts(t *testing.T) {
	// Fullwidth small m has no prototype although fullwidth a, o and the
	// rest do; PRECIS width mapping turns it into "m" before Skeleton runs.
	if got := confusable.Skeleton("ｍ"); got != "ｍ" {
		t.Errorf("Skeleton(U+FF4D) = %+q; the data gap is gone, update the docs", got)
	}
	want := []string{"rn", "O", "l"}
	if got := []string{confusable.Skeleton("m"), confusable.Skeleton("0"), confusable.Skeleton("1")}; !slices.Equal(got, want) {
		t.Errorf("skeletons of m, 0, 1 = %+q, want %+q", got, want)
	}
}
