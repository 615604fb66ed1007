package server_test

import (
	"errors"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/chatd/chatd/server"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestCheckUsername(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, display, key string // display == "" means rejected
	}{
		// Accepted, shown as given, unique by the case-mapped form.
		{"alice", "alice", "alice"},
		{"Alice", "Alice", "alice"},
		{"ALICE", "ALICE", "alice"},
		{"bob42", "bob42", "bob42"},
		{"o'neil", "o'neil", "o'neil"},
		{"a.b-c_d", "a.b-c_d", "a.b-c_d"},
		{"user@host", "user@host", "user@host"},
		{"#tag", "#tag", "#tag"},
		{"Zoë", "Zoë", "zoë"},
		{"José", "José", "josé"},
		{"ΣΑΣ", "ΣΑΣ", "σασ"},
		{"e\u0301", "é", "é"}, // normalized to NFC
		{"ＡＢＣ", "ABC", "abc"}, // fullwidth letters are width-mapped
		{"ｈｉ", "hi", "hi"},    //
		{strings.Repeat("x", 32), strings.Repeat("x", 32), strings.Repeat("x", 32)},
		{strings.Repeat("é", 32), strings.Repeat("é", 32), strings.Repeat("é", 32)}, // characters, not bytes
		{"алиса", "алиса", "алиса"},                                                 // one script: Cyrillic
		{"田中さん", "田中さん", "田中さん"},                                                    // Han with Hiragana: Japanese
		{"bob田中", "bob田中", "bob田中"},                                                 // Latin with Han
		{"김민준kim", "김민준kim", "김민준kim"},

		// Rejected.
		{"", "", ""},
		{"a b", "", ""},                   // space
		{" alice", "", ""},                // leading space
		{"alice\t", "", ""},               // tab
		{"x\u00a0y", "", ""},              // no-break space
		{"a\x01", "", ""},                 // control character
		{"a\u200b", "", ""},               // zero-width space
		{"x\u00ad", "", ""},               // soft hyphen
		{"😀", "", ""},                     // emoji
		{"a😀", "", ""},                    //
		{"♥", "", ""},                     // symbol
		{"Ⅻ", "", ""},                     // compatibility character
		{"ﬁ", "", ""},                     // ligature
		{strings.Repeat("x", 33), "", ""}, // 33 characters
		{strings.Repeat("ｘ", 33), "", ""}, // 33 after width mapping
		{"\xff", "", ""},                  // not UTF-8
		{"\u0430lice", "", ""},            // Cyrillic а among Latin
		{"\u0391lice", "", ""},            // Greek Α among Latin
		{"b\u043eb", "", ""},              // Cyrillic о among Latin
		{"αβгд", "", ""},                  // Greek with Cyrillic
	} {
		display, key, err := server.CheckUsername(tc.name)
		if tc.display == "" {
			if err == nil || !errors.Is(err, server.ErrInvalidUsername) {
				t.Errorf("CheckUsername(%q) = %q, %q, %v; want ErrInvalidUsername", tc.name, display, key, err)
			}
			continue
		}
		if err != nil || display != tc.display || key != tc.key {
			t.Errorf("CheckUsername(%q) = %q, %q, %v; want %q, %q, nil", tc.name, display, key, err, tc.display, tc.key)
		}
	}
}

func TestCheckUsernameErrorsSayWhatToFix(t *testing.T) {
	t.Parallel()
	for name, want := range map[string]string{
		"":                      "required",
		"a b":                   "no spaces",
		strings.Repeat("x", 33): "at most 32 characters",
		"\u0430lice":            "mixes Cyrillic and Latin letters",
		"\u0391lice":            "mixes Greek and Latin letters",
	} {
		_, _, err := server.CheckUsername(name)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("CheckUsername(%q) error = %v; want it to mention %q", name, err, want)
		}
	}
}

func TestCheckChannel(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, display, key string }{
		{"go", "go", "go"},
		{"#Go", "Go", "go"},
		{"Café-au_lait.2", "Café-au_lait.2", "café-au_lait.2"},
		{"ＧＯ", "GO", "go"}, // full-width letters are the same name
		{strings.Repeat("x", server.MaxChannelNameLength), strings.Repeat("x", 32), strings.Repeat("x", 32)},
	} {
		display, key, err := server.CheckChannel(tc.in)
		if err != nil || display != tc.display || key != tc.key {
			t.Errorf("CheckChannel(%q) = %q, %q, %v; want %q, %q", tc.in, display, key, err, tc.display, tc.key)
		}
	}
	for _, bad := range []string{"", "#", "##go", "two words", "a/b", "<b>", "tab\t", "x\x00", strings.Repeat("x", 33), "emoji😀"} {
		_, _, err := server.CheckChannel(bad)
		if !errors.Is(err, server.ErrInvalidChannel) || status.Code(err) != codes.InvalidArgument || !strings.HasPrefix(err.Error(), "invalid channel name: ") {
			t.Errorf("CheckChannel(%q) = %v; want ErrInvalidChannel (INVALID_ARGUMENT) saying what to fix", bad, err)
		}
	}
}

func TestCleanText(t *testing.T) {
	t.Parallel()
	max := strings.Repeat("x", server.MaxTextBytes)
	for _, tc := range []struct {
		in, want string // want == "" means rejected
	}{
		{"hello", "hello"},
		{"  hello world \n", "hello world"},
		{"line one\nline two", "line one\nline two"},
		{"héllo 😀", "héllo 😀"},
		{"\x01a", "\x01a"},                                     // controls among visible text are kept
		{max, max},                                             // exactly the limit
		{"  " + max + "\n\t", max},                             // limit counted after trimming
		{strings.Repeat("é", 2048), strings.Repeat("é", 2048)}, // 4096 bytes

		{"", ""},
		{" \t\r\n ", ""},                      // white space only
		{"\x00\x07\x1b", ""},                  // control characters only
		{"\u0085\u0080", ""},                  // C1 controls only
		{max + "x", ""},                       // 4097 bytes
		{strings.Repeat("é", 2048) + "x", ""}, // 4097 bytes, 2049 characters
		{"ok\xff", ""},                        // not UTF-8
	} {
		got, err := server.CleanText(tc.in)
		if tc.want == "" {
			if !errors.Is(err, server.ErrInvalidText) {
				t.Errorf("CleanText(%.40q) = %.40q, %v; want ErrInvalidText", tc.in, got, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("CleanText(%.40q) = %.40q, %v; want %.40q, nil", tc.in, got, err, tc.want)
		}
	}
}

func FuzzCheckUsername(f *testing.F) {
	for _, seed := range []string{
		"alice", "Alice", "ＡＢＣ", "Zoë", "e\u0301", "İ", "ß", "ΣΑΣ", "ǅ", "a b", "",
		"😀", "\xff", "a\u200b", strings.Repeat("x", 32), strings.Repeat("x", 33),
		strings.Repeat("ｘ", 32), "\u0661\u0662", "o'neil",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, name string) {
		display, key, err := server.CheckUsername(name)
		if err != nil {
			if !errors.Is(err, server.ErrInvalidUsername) || display != "" || key != "" {
				t.Fatalf("CheckUsername(%q) = %q, %q, %v; want \"\", \"\" and an ErrInvalidUsername", name, display, key, err)
			}
			return
		}
		if n := utf8.RuneCountInString(display); display == "" || n > server.MaxUsernameLength {
			t.Fatalf("CheckUsername(%q) accepted display %q of %d characters; want 1..%d", name, display, n, server.MaxUsernameLength)
		}
		if !utf8.ValidString(display) || !utf8.ValidString(key) {
			t.Fatalf("CheckUsername(%q) = %q, %q: not valid UTF-8", name, display, key)
		}
		if strings.ContainsFunc(display, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) {
			t.Fatalf("CheckUsername(%q) accepted %q, which has space or control characters", name, display)
		}
		// What is shown is itself a valid name, with the same key: a user
		// who types the name they see gets the same identity.
		d2, k2, err := server.CheckUsername(display)
		if err != nil || d2 != display || k2 != key {
			t.Fatalf("CheckUsername(%q) = %q, %q, but CheckUsername(%q) = %q, %q, %v; want it stable", name, display, key, display, d2, k2, err)
		}
		// The key is its own key: names differing only in case collide.
		if _, k3, err := server.CheckUsername(key); err != nil || k3 != key {
			t.Fatalf("key %q of %q maps to %q, %v; want itself", key, name, k3, err)
		}
	})
}

func FuzzCleanText(f *testing.F) {
	for _, seed := range []string{
		"hello", "  hi  ", "", " ", "\x00", "\x01a", "\u0085", "\xff", "😀",
		strings.Repeat("x", server.MaxTextBytes), strings.Repeat("x", server.MaxTextBytes+1),
		" " + strings.Repeat("x", server.MaxTextBytes) + " ",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, text string) {
		got, err := server.CleanText(text)
		if err != nil {
			if !errors.Is(err, server.ErrInvalidText) || got != "" {
				t.Fatalf("CleanText(%q) = %q, %v; want \"\" and an ErrInvalidText", text, got, err)
			}
			return
		}
		if len(got) == 0 || len(got) > server.MaxTextBytes {
			t.Fatalf("CleanText(%q) accepted %d bytes; want 1..%d", text, len(got), server.MaxTextBytes)
		}
		if !utf8.ValidString(got) {
			t.Fatalf("CleanText(%q) = %q: not valid UTF-8", text, got)
		}
		if got != strings.TrimSpace(got) {
			t.Fatalf("CleanText(%q) = %q: not trimmed", text, got)
		}
		if !strings.Contains(text, got) {
			t.Fatalf("CleanText(%q) = %q: not a part of the input", text, got)
		}
		if !strings.ContainsFunc(got, func(r rune) bool { return !unicode.IsControl(r) }) {
			t.Fatalf("CleanText(%q) = %q: only control characters", text, got)
		}
		if again, err := server.CleanText(got); err != nil || again != got {
			t.Fatalf("CleanText(CleanText(%q)) = %q, %v; want %q, nil (idempotent)", text, again, err, got)
		}
	})
}
