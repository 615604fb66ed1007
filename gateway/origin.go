package gateway

import (
	"fmt"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
)

// ParseOrigin returns origin, an entry of Config.AllowedOrigins, as the
// gateway compares it with a browser's Origin header: "scheme://host" or
// "scheme://host:port", in lower case, or "*". Two spellings that name the
// same origin are taken as it, since neither is ambiguous and both are
// what an operator pastes from an address bar: a trailing "/" is dropped,
// and so is the scheme's default port ("https://Chat.Example.com:443/" is
// "https://chat.example.com"), which browsers never send. What a
// browser's Origin can never be, and so would never match, is an error
// that says what to write instead: no scheme, a scheme other than http or
// https, a path, query or fragment (pages are allowed by origin, not one
// by one), a user name, a wildcard in a name, a name not in its ASCII
// form.
func ParseOrigin(origin string) (string, error) {
	if origin == "*" {
		return origin, nil
	}
	const form = "an origin is scheme://host[:port], such as https://chat.example.com"
	if strings.EqualFold(origin, "null") {
		return "", fmt.Errorf("%q (the origin of local files and sandboxed pages) cannot be allowed on its own: only * allows it", origin)
	}
	if !strings.Contains(origin, "://") {
		if u, err := url.Parse("https://" + origin); err == nil && u.Host != "" && u.User == nil {
			return "", fmt.Errorf("%q has no scheme: write https://%s (or http:// for a page served over plain HTTP)", origin, u.Host)
		}
		return "", fmt.Errorf("%q is not an origin: %s", origin, form)
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return "", fmt.Errorf("%q is not an origin: %s", origin, form)
	}
	scheme := strings.ToLower(u.Scheme)
	if scheme != "http" && scheme != "https" {
		return "", fmt.Errorf("%q is not an origin a page can have: its scheme must be https or http, such as https://chat.example.com", origin)
	}
	host, err := originHost(u.Hostname())
	if err != nil {
		return "", fmt.Errorf("%q: %v", origin, err)
	}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return "", fmt.Errorf("%q: its port must be 1 to 65535", origin)
		}
		if !(scheme == "https" && n == 443 || scheme == "http" && n == 80) {
			host += ":" + strconv.Itoa(n)
		}
	}
	canon := scheme + "://" + host
	if u.User != nil {
		return "", fmt.Errorf("%q has a user name, which an origin never has: write %s", origin, canon)
	}
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" {
		return "", fmt.Errorf("%q is more than an origin: pages are allowed by their origin alone, scheme://host[:port], so write %s", origin, canon)
	}
	return canon, nil
}

// originHost returns the host of an origin as a browser writes it: a name
// in lower case, or an IP address ([]-enclosed if IPv6).
func originHost(h string) (string, error) {
	if a, err := netip.ParseAddr(h); err == nil {
		if a.Is6() {
			return "[" + a.String() + "]", nil
		}
		return a.String(), nil
	}
	h = strings.ToLower(h)
	for _, r := range h {
		switch {
		case r == '*':
			return "", fmt.Errorf("an origin has no wildcards: name each one, or give * alone to allow every origin")
		case r > 0x7f:
			return "", fmt.Errorf("write the name in its ASCII form (xn--…), which is what browsers send")
		case r != '.' && r != '-' && r != '_' && (r < 'a' || r > 'z') && (r < '0' || r > '9'):
			return "", fmt.Errorf("%q is not a host name", h)
		}
	}
	return h, nil
}
