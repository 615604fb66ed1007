package server

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/chatd/chatd/internal/confusable"
	"golang.org/x/text/secure/precis"
)

// CheckUsername checks a requested username against the PRECIS username
// profile (RFC 8265), the length limit, and Unicode TS #39's highly
// restrictive level: a name may not mix scripts (one script, or Latin with
// Han and the Japanese kana, Bopomofo or Hangul), since mixing them is how
// a name is made to look like another ("аlice" with a Cyrillic а). It
// returns the name to show (the enforced, case-preserved form) and the key
// that makes names unique (the case-mapped form), or an
// [ErrInvalidUsername] error that says what to fix.
func CheckUsername(name string) (display, key string, err error) {
	if name == "" {
		return "", "", invalidUsername("a username is required")
	}
	display, err = precis.UsernameCasePreserved.String(name)
	if err != nil {
		return "", "", invalidUsername("use letters, digits and punctuation only, with no spaces")
	}
	if n := utf8.RuneCountInString(display); n > MaxUsernameLength {
		return "", "", invalidUsername("use at most 32 characters")
	}
	key, err = precis.UsernameCaseMapped.String(name)
	if err != nil {
		// Unreachable in practice: the case-preserved profile accepted it.
		return "", "", invalidUsername("use letters, digits and punctuation only, with no spaces")
	}
	if scripts := confusable.MixedScripts(key); scripts != nil {
		return "", "", invalidUsername(mixesScripts(scripts) + ": use the letters of one script")
	}
	return display, key, nil
}

// lookalikeKeys returns what a username, shown as display and unique as
// key (see CheckUsername), is compared under with every other name for
// looking alike: the caseless skeletons (see confusable.CaselessSkeleton)
// of the name as typed and of its key. As typed, capitals count ("aIice",
// with a capital I, looks like "alice"; folded it is "aiice", which looks
// like nothing); the key stands for the name's other case forms ("ALICE"
// is "alice" too, and "AIice" looks like "Alice"). Two names conflict if
// they share either. The name's upper-case form is not compared: folding
// its skeleton would make "mail" and "mall" look alike ("MAIL" has a
// capital I, which looks like l).
func lookalikeKeys(display, key string) [2]string {
	return [2]string{confusable.CaselessSkeleton(display), confusable.CaselessSkeleton(key)}
}

// mixesScripts says which scripts a name mixes: "it mixes Cyrillic and
// Latin letters".
func mixesScripts(scripts []string) string {
	names := make([]string, len(scripts))
	for i, s := range scripts {
		names[i] = strings.ReplaceAll(s, "_", " ")
	}
	last := len(names) - 1
	if last == 0 {
		return "it mixes " + names[0] + " letters with others"
	}
	return "it mixes " + strings.Join(names[:last], ", ") + " and " + names[last] + " letters"
}

// CheckChannel checks a channel name: one leading "#" is dropped, then 1 to
// [MaxChannelNameLength] letters, digits, "-", "_" and ".". It returns the
// name to show (as written, normalised) and the key that makes names unique
// whatever their letter case, or an [ErrInvalidChannel] error that says what
// to fix.
func CheckChannel(name string) (display, key string, err error) {
	name = strings.TrimPrefix(name, "#")
	if name == "" {
		return "", "", invalidChannel("a channel name is required")
	}
	for _, r := range name {
		if !unicode.IsLetter(r) && !unicode.IsDigit(r) && r != '-' && r != '_' && r != '.' {
			return "", "", invalidChannel(`use letters, digits, "-", "_" and "." only`)
		}
	}
	display, err = precis.UsernameCasePreserved.String(name)
	if err != nil {
		return "", "", invalidChannel(`use letters, digits, "-", "_" and "." only`)
	}
	if utf8.RuneCountInString(display) > MaxChannelNameLength {
		return "", "", invalidChannel("use at most 32 characters")
	}
	key, err = precis.UsernameCaseMapped.String(name)
	if err != nil {
		return "", "", invalidChannel(`use letters, digits, "-", "_" and "." only`)
	}
	if scripts := confusable.MixedScripts(key); scripts != nil {
		return "", "", invalidChannel(mixesScripts(scripts) + ": use the letters of one script")
	}
	return display, key, nil
}

// CleanText trims a message's surrounding white space and checks it: 1 to
// [MaxTextBytes] bytes, not made only of control characters. It returns the
// text to broadcast or an [ErrInvalidText] error.
func CleanText(text string) (string, error) {
	text = strings.TrimSpace(text)
	switch {
	case text == "":
		return "", invalidText("message is empty")
	case len(text) > MaxTextBytes:
		return "", invalidText("message is too long: at most 4096 bytes")
	case !utf8.ValidString(text):
		return "", invalidText("message is not valid UTF-8")
	}
	for _, r := range text {
		if !unicode.IsControl(r) {
			return text, nil
		}
	}
	return "", invalidText("message has no visible characters")
}

// checkClientID limits what a client can make the server echo back.
func checkClientID(id string) error {
	if len(id) > MaxClientIDBytes {
		return &Error{Kind: ErrInvalidRequest, Msg: "client_id is too long: at most 64 bytes"}
	}
	return nil
}
