package confusable_test

import (
	"slices"
	"testing"
	"unicode/utf8"

	"github.com/chatd/chatd/internal/confusable"
)

func TestMixedScripts(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want []string // nil: passes Highly Restrictive
	}{
		{"", nil},
		{"alice", nil},
		{"alice_2", nil},
		{"a.b-c", nil},
		{"123", nil},                              // Common only
		{"_-.@!", nil},                            // Common only
		{"٣٤", nil},                               // U+0663 U+0664: Arabic, Thaana and Yezidi digits
		{"алиса", nil},                            // Cyrillic
		{"αλέξανδρος", nil},                       // Greek
		{"ελληνικά123", nil},                      // Greek and Common digits
		{"田中さん", nil},                             // Han + Hiragana: Japanese
		{"abc田中", nil},                            // Latin + Han
		{"abcたなか", nil},                           // Latin + Hiragana
		{"kim민수", nil},                            // Latin + Hangul
		{"kim金민수", nil},                           // Latin + Han + Hangul
		{"ｶタカナ", nil},                             // halfwidth and fullwidth Katakana
		{"ひらがなカタカナ漢字abc", nil},                    // Latin + Han + Hiragana + Katakana
		{"abcㄅㄆ", nil},                            // Latin + Bopomofo
		{"中文ㄅㄆabc", nil},                          // Latin + Han + Bopomofo
		{"e\u0301", nil},                          // Latin + U+0301, which is Inherited but limited to Latin, Greek, Cyrillic...
		{"а\u0301", nil},                          // Cyrillic + U+0301
		{"а\u20d0", nil},                          // Cyrillic + a purely Inherited mark
		{"rāmā", nil},                             // Latin with precomposed ā
		{"aー", nil},                               // Latin + U+30FC, a Hiragana/Katakana character
		{"らーめん", nil},                             // Hiragana + U+30FC
		{"カー", nil},                               // Katakana + U+30FC
		{"a·b", nil},                              // U+00B7 MIDDLE DOT has Latin among its scripts
		{"аlice", []string{"Cyrillic", "Latin"}},  // U+0430
		{"alicе", []string{"Cyrillic", "Latin"}},  // U+0435 at the end
		{"Αlice", []string{"Greek", "Latin"}},     // U+0391
		{"αlice", []string{"Greek", "Latin"}},     // U+03B1
		{"αб", []string{"Cyrillic", "Greek"}},     //
		{"abcعربي", []string{"Arabic", "Latin"}},  //
		{"민수たなか", []string{"Hangul", "Hiragana"}}, // Korean + Japanese
		{"ㄅ민수", []string{"Bopomofo", "Hangul"}},   //
		{"abc٣", []string{"Arabic", "Latin", "Thaana", "Yezidi"}},      // U+0663 has three scripts, none Latin
		{"a\u0483", []string{"Cyrillic", "Latin", "Old_Permic"}},       // U+0483 COMBINING CYRILLIC TITLO
		{"аー", []string{"Cyrillic", "Hiragana", "Katakana"}},           // U+30FC: Script Common, Script_Extensions Hira Kana
		{"аカー", []string{"Cyrillic", "Katakana"}},                      // U+30FC adds nothing new
		{"aаー", []string{"Cyrillic", "Hiragana", "Katakana", "Latin"}}, // Latin, Cyrillic and U+30FC
		{"а·b", []string{"Cyrillic", "Latin"}},                         // U+00B7 adds nothing new
		{"a\U000e0ff0", []string{"Latin", "Unknown"}},                  // unassigned: script Unknown
	} {
		got := confusable.MixedScripts(tt.in)
		if !slices.Equal(got, tt.want) || (got == nil) != (tt.want == nil) {
			t.Errorf("MixedScripts(%+q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestScriptExtensions checks a few entries of the generated script tables,
// including every ASCII character, which MixedScripts does not look up.
func TestScriptExtensions(t *testing.T) {
	for c := rune(0); c < utf8.RuneSelf; c++ {
		var want []string // Common
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' {
			want = []string{"Latin"}
		}
		if got := confusable.ScriptExtensions(c); !slices.Equal(got, want) {
			t.Errorf("ScriptExtensions(%+q) = %q, want %q", c, got, want)
		}
	}
	for _, tt := range []struct {
		r    rune
		want []string
	}{
		{'а', []string{"Cyrillic"}},
		{'α', []string{"Greek"}},
		{'田', []string{"Han"}},
		{'さ', []string{"Hiragana"}},
		{'ｶ', []string{"Katakana"}},
		{'민', []string{"Hangul"}},
		{0x30FC, []string{"Hiragana", "Katakana"}},
		{0x0301, []string{"Cherokee", "Cyrillic", "Greek", "Latin", "Osage", "Sunuwar", "Tai_Le", "Todhri"}},
		{0x20D0, nil},                   // Inherited
		{0x3000, nil},                   // Common
		{0x0378, []string{"Unknown"}},   // unassigned
		{0x10FFFF, []string{"Unknown"}}, // noncharacter
		{0x16FE4, []string{"Khitan_Small_Script"}},
	} {
		if got := confusable.ScriptExtensions(tt.r); !slices.Equal(got, tt.want) {
			t.Errorf("ScriptExtensions(U+%04X) = %q, want %q", tt.r, got, tt.want)
		}
	}
}

func FuzzMixedScripts(f *testing.F) {
	for _, s := range []string{"alice", "аlice", "田中さん", "aаー", "abc٣", "\xff", "a\U000e0ff0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := confusable.MixedScripts(s)
		if got == nil {
			return
		}
		// A refused string mixes at least two scripts, named once each, in
		// order.
		if len(got) < 2 || !slices.IsSorted(got) || len(slices.Compact(slices.Clone(got))) != len(got) {
			t.Fatalf("MixedScripts(%+q) = %q", s, got)
		}
	})
}

func BenchmarkMixedScripts(b *testing.B) {
	for _, bb := range []struct{ name, in string }{
		{"ascii", "alice_wonderland42"},
		{"cyrillic", "алиса_селезнёва"},
		{"japanese", "田中さん_tanaka"},
		{"mixed", "pаypаl_security"},
	} {
		b.Run(bb.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				confusable.MixedScripts(bb.in)
			}
		})
	}
}
