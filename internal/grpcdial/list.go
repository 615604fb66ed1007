package grpcdial

import (
	"fmt"
	"strings"
)

// SplitList splits list, chatd's gRPC addresses separated by commas (the
// nodes of a cluster), into the addresses, in order. Spaces around an
// address are ignored, as people write lists that way. Each address must
// be one [CheckAddr] accepts, and none may be listed twice: a list that
// names a node twice was meant to name another.
//
// A list of one address is that address, and its error is CheckAddr's,
// unless it is good addresses separated by spaces or semicolons instead,
// which the error says (CheckAddr would speak of colons or ports). In a
// longer list the error says which address is wrong, by its position (from
// 1) and its text, since "it has no port" alone would not.
func SplitList(list string) ([]string, error) {
	parts := strings.Split(list, ",")
	if len(parts) == 1 {
		addr := strings.TrimSpace(list)
		if err := CheckAddr(addr); err != nil {
			if otherSeparator(addr) {
				return nil, fmt.Errorf("separate addresses with commas: %s", strings.Join(strings.FieldsFunc(addr, isSeparator), ","))
			}
			return nil, err
		}
		return []string{addr}, nil
	}
	addrs := make([]string, 0, len(parts))
	for i, p := range parts {
		addr := strings.TrimSpace(p)
		if addr == "" {
			return nil, fmt.Errorf("address %d is empty (a stray comma?)", i+1)
		}
		if err := CheckAddr(addr); err != nil {
			return nil, fmt.Errorf("address %d (%q): %w", i+1, addr, err)
		}
		for j, a := range addrs {
			if a == addr {
				return nil, fmt.Errorf("%s is listed twice (addresses %d and %d)", addr, j+1, i+1)
			}
		}
		addrs = append(addrs, addr)
	}
	return addrs, nil
}

// otherSeparator reports whether addr, which CheckAddr refuses, is several
// good addresses separated by spaces or semicolons rather than commas.
func otherSeparator(addr string) bool {
	fields := strings.FieldsFunc(addr, isSeparator)
	if len(fields) < 2 {
		return false
	}
	for _, f := range fields {
		if CheckAddr(f) != nil {
			return false
		}
	}
	return true
}

func isSeparator(r rune) bool { return r == ';' || r == ' ' || r == '\t' }
