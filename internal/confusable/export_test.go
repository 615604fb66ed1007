package confusable

// Hooks for the tests in package confusable_test, which check the generated
// tables through them.

// Prototypes calls f for every entry of the prototypes table, in order.
func Prototypes(f func(from rune, to string)) {
	for _, p := range prototypes {
		f(p.from, prototypeText[p.off:int(p.off)+int(p.n)])
	}
}

// ScriptExtensions returns the names of the scripts in the Script_Extensions
// of r, sorted, or nil if r is Common or Inherited.
func ScriptExtensions(r rune) []string {
	i := scriptSetOf(r)
	if i == allScripts {
		return nil
	}
	set := scriptSets[i].withoutPseudo()
	var names []string
	for j := range numScripts {
		if set.has(j) {
			names = append(names, scriptNames[j])
		}
	}
	return names
}

// IsDefaultIgnorable exposes isDefaultIgnorable.
var IsDefaultIgnorable = isDefaultIgnorable
