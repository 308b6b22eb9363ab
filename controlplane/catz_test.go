package controlplane

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/ringdns/ringdns/zone"
)

// catalogZone is a catalog zone in RFC 9432's form with the cases a
// consumer must handle: a plain member, one with a group, a unique label
// with two PTR records, a member listed twice, and records it ignores.
const catalogZone = `$ORIGIN catz.example.
$TTL 0
@                    IN SOA invalid. invalid. 7 3600 600 2147483646 0
@                    IN NS  invalid.
version              IN TXT "2"
a1.zones             IN PTR Member-One.example.
b2.zones             IN PTR member-two.example.
group.b2.zones       IN TXT "signed"
c3.zones             IN PTR broken-a.example.
c3.zones             IN PTR broken-b.example.
d4.zones             IN PTR member-one.example.
coo.a1.zones         IN PTR other-catalog.example.
x.y.zones            IN PTR deep.example.
stray                IN TXT "ignored"
`

func TestCatalogMembers(t *testing.T) {
	z, err := zone.Parse(strings.NewReader(catalogZone), "catz.example.", "catz.zone")
	if err != nil {
		t.Fatal(err)
	}
	got, warnings, err := catalogMembers(z)
	if err != nil {
		t.Fatal(err)
	}
	want := []catalogMember{
		{Origin: "member-one.example.", ID: "a1"},
		{Origin: "member-two.example.", ID: "b2", Group: "signed"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("members = %+v, want %+v", got, want)
	}
	joined := strings.Join(warnings, "\n")
	for _, w := range []string{"member c3 has 2 PTR records", "member d4 names member-one.example., already listed as member a1"} {
		if !strings.Contains(joined, w) {
			t.Errorf("warnings %q lack %q", warnings, w)
		}
	}
}

func TestCatalogMembersVersion(t *testing.T) {
	for _, v := range []string{`version IN TXT "1"`, `version IN TXT "2"` + "\nversion IN TXT \"3\"", ``} {
		text := strings.Replace(catalogZone, `version              IN TXT "2"`, v, 1)
		z, err := zone.Parse(strings.NewReader(text), "catz.example.", "catz.zone")
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := catalogMembers(z); !errors.Is(err, ErrCatalogVersion) {
			t.Errorf("version %q: err = %v, want ErrCatalogVersion", v, err)
		}
	}
}
