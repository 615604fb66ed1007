package confusable

import (
	"math/bits"
	"unicode/utf8"
)

// scriptSet is a set of scripts: bit i stands for scriptNames[i], and the
// bits from numScripts on for the pseudo-scripts Han_with_Bopomofo,
// Japanese and Korean.
type scriptSet [scriptWords]uint64

// scriptRange is one entry of the generated scriptRanges table: code points
// from lo up to the next entry's lo have the script set scriptSets[set].
type scriptRange struct {
	lo  rune
	set uint16
}

// allScripts is the index in scriptSets of the set of every script, which
// Common and Inherited characters have.
const allScripts = 0

func (s *scriptSet) has(i int) bool { return s[i/64]&(1<<(i%64)) != 0 }

func (s *scriptSet) intersect(t *scriptSet) {
	for i := range s {
		s[i] &= t[i]
	}
}

func (s *scriptSet) isEmpty() bool {
	for _, w := range s {
		if w != 0 {
			return false
		}
	}
	return true
}

// withoutPseudo returns s without the pseudo-scripts.
func (s scriptSet) withoutPseudo() scriptSet {
	for i := numScripts; i < scriptWords*64; i++ {
		s[i/64] &^= 1 << (i % 64)
	}
	return s
}

func (s *scriptSet) union(t *scriptSet) {
	for i := range s {
		s[i] |= t[i]
	}
}

func (s *scriptSet) intersects(t *scriptSet) bool {
	for i := range s {
		if s[i]&t[i] != 0 {
			return true
		}
	}
	return false
}

func (s *scriptSet) count() int {
	n := 0
	for _, w := range s {
		n += bits.OnesCount64(w)
	}
	return n
}

// scriptSetOf returns the index in scriptSets of the augmented
// Script_Extensions of r.
func scriptSetOf(r rune) uint16 {
	// Binary search for the last range starting at or before r; the first
	// range starts at 0.
	lo, hi := 0, len(scriptRanges)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if scriptRanges[m].lo <= r {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return scriptRanges[lo-1].set
}

// MixedScripts returns nil if s passes the Highly Restrictive level of UTS
// #39 section 5.2, and otherwise the names of the scripts s mixes, sorted,
// such as ["Cyrillic" "Latin"] for "аlice" with a Cyrillic а.
//
// A string passes if all its characters share a script, or if it is Latin
// mixed with the scripts of one of Chinese, Japanese or Korean writing:
// Latin + Han + Hiragana + Katakana, Latin + Han + Bopomofo, or Latin + Han
// + Hangul. Scripts are those of the Script_Extensions property, so a
// character used by several scripts, like U+30FC KATAKANA-HIRAGANA
// PROLONGED SOUND MARK, fits with any of them; Common and Inherited
// characters (digits, punctuation, many combining marks) fit with every
// script. "аlice" fails; "alice_2", "алиса", "田中さん" and "abc田中" pass.
//
// The names are Script property values as in Unicode's
// PropertyValueAliases.txt and Go's unicode.Scripts, such as "Latin",
// "Cyrillic", "Han" or "Old_Permic". A character with several scripts adds
// them all, unless one is already among the names: "аー" (Cyrillic а and
// U+30FC) gives ["Cyrillic" "Hiragana" "Katakana"].
//
// MixedScripts implements only the script part of the restriction levels;
// which characters a name may contain at all is left to PRECIS.
func MixedScripts(s string) []string {
	i := 0
	for i < len(s) && s[i] < utf8.RuneSelf {
		i++
	}
	if i == len(s) {
		// ASCII letters are Latin and the other ASCII characters Common.
		return nil
	}

	// Section 5.2, steps 3 to 5: the resolved script set of s, and that of
	// s without the characters that Latin uses.
	resolved, withoutLatin := scriptSets[allScripts], scriptSets[allScripts]
	for _, r := range s {
		set := &scriptSets[scriptSetOf(r)]
		resolved.intersect(set)
		if !set.has(latinScript) {
			withoutLatin.intersect(set)
		}
	}
	if !resolved.isEmpty() ||
		withoutLatin.has(hanWithBopomofoScript) ||
		withoutLatin.has(japaneseScript) ||
		withoutLatin.has(koreanScript) {
		return nil
	}
	return scriptsOf(s)
}

// scriptsOf returns the names of the scripts used in s, for a message
// saying which scripts s mixes. Characters with a single script count
// first; a character with several then adds them only if none is counted
// yet, so that "аbc·" names Cyrillic and Latin, not the sixteen scripts of
// U+00B7 MIDDLE DOT.
func scriptsOf(s string) []string {
	var found scriptSet
	for _, r := range s {
		if i := scriptSetOf(r); i != allScripts {
			if set := scriptSets[i].withoutPseudo(); set.count() == 1 {
				found.union(&set)
			}
		}
	}
	for _, r := range s {
		if i := scriptSetOf(r); i != allScripts {
			if set := scriptSets[i].withoutPseudo(); set.count() > 1 && !found.intersects(&set) {
				found.union(&set)
			}
		}
	}
	names := make([]string, 0, found.count())
	for i := range numScripts {
		if found.has(i) {
			names = append(names, scriptNames[i])
		}
	}
	return names
}
