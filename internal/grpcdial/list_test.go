package grpcdial_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/chatd/chatd/internal/grpcdial"
)

func TestSplitList(t *testing.T) {
	t.Parallel()
	for list, want := range map[string][]string{
		"localhost:50051":                     {"localhost:50051"},
		" localhost:50051 ":                   {"localhost:50051"},
		"a:1,b:2,c:3":                         {"a:1", "b:2", "c:3"},
		"a:1, b:2 ,c:3":                       {"a:1", "b:2", "c:3"},
		"[::1]:50051,127.0.0.1:50051":         {"[::1]:50051", "127.0.0.1:50051"},
		"chat-1.example.com:443,chat-2:50051": {"chat-1.example.com:443", "chat-2:50051"},
	} {
		got, err := grpcdial.SplitList(list)
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("SplitList(%q) = %q, %v; want %q", list, got, err, want)
		}
	}
	for list, want := range map[string]string{
		// One address: CheckAddr's own words, as before lists.
		"":          "it is empty",
		"localhost": "it has no port",
		// Several: which one, and what is wrong with it.
		"a:1,localhost":         `address 2 ("localhost"): it has no port`,
		"http://a:1,b:2":        `address 1 ("http://a:1"): it has a scheme (http://); chatd's gRPC port takes no scheme`,
		"a:1,b:2,c:http":        `address 3 ("c:http"): port "http" is not a number from 1 to 65535`,
		"a:1,,b:2":              "address 2 is empty (a stray comma?)",
		"a:1,b:2,":              "address 3 is empty (a stray comma?)",
		",":                     "address 1 is empty (a stray comma?)",
		"a:1,b:2, a:1":          "a:1 is listed twice (addresses 1 and 3)",
		"a:1;b:2":               "separate addresses with commas: a:1,b:2",
		"a:1 b:2":               "separate addresses with commas: a:1,b:2",
		"a:1 ; b:2":             "separate addresses with commas: a:1,b:2",
		"a:1 b":                 `port "1 b" is not a number`,
		"[::1]:1,::1:2":         `address 2 ("::1:2"): too many colons (an IPv6 address goes in brackets: [::1]:50051)`,
		"a:1,local host:50051":  `address 2 ("local host:50051"): host "local host" is neither a host name nor an IP address`,
		"a:1,b:2,c:3,d:4,e:0":   `address 5 ("e:0"): port "0" is not a number from 1 to 65535`,
		"dns:///a:1,dns:///b:2": `address 1 ("dns:///a:1"): it has a scheme (dns://)`,
	} {
		got, err := grpcdial.SplitList(list)
		if err == nil || err.Error() != want && !strings.HasPrefix(err.Error(), want) {
			t.Errorf("SplitList(%q) = %q, %v; want the error %q", list, got, err, want)
		}
	}
}
