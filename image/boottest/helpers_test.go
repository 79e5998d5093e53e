package boottest

import (
	"encoding/binary"
	"net"
	"testing"
)

func TestParseMBR(t *testing.T) {
	mbr := make([]byte, 512)
	mbr[510], mbr[511] = 0x55, 0xaa
	e := mbr[446:]
	e[0], e[4] = 0x80, 0x0c
	binary.LittleEndian.PutUint32(e[8:], 8192)
	binary.LittleEndian.PutUint32(e[12:], 524288)
	e = mbr[462:]
	e[4] = 0x83
	binary.LittleEndian.PutUint32(e[8:], 532480)
	binary.LittleEndian.PutUint32(e[12:], 100)
	parts, err := parseMBR(mbr)
	if err != nil {
		t.Fatal(err)
	}
	want := []Partition{{0x0c, true, 4 << 20, 256 << 20}, {0x83, false, 532480 * 512, 100 * 512}}
	if len(parts) != 2 || parts[0] != want[0] || parts[1] != want[1] {
		t.Errorf("got %+v, want %+v", parts, want)
	}
	mbr[510] = 0
	if _, err := parseMBR(mbr); err == nil {
		t.Error("no signature accepted")
	}
}

// An answer shaped like avahi-daemon's to a legacy unicast query: the question echoed,
// the A record with the cache-flush bit and a compressed name.
func TestParseA(t *testing.T) {
	q, err := buildQuery(7, "waxmpp.local", 1)
	if err != nil {
		t.Fatal(err)
	}
	resp := append([]byte(nil), q...)
	resp[2] = 0x84                          // response, authoritative
	binary.BigEndian.PutUint16(resp[6:], 1) // ANCOUNT
	resp = append(resp, 0xc0, 12)           // pointer to the question's name
	resp = append(resp, 0, 1, 0x80, 1)      // A, cache-flush IN
	resp = append(resp, 0, 0, 0, 10, 0, 4)  // TTL 10, RDLENGTH 4
	resp = append(resp, 10, 0, 2, 15)       // 10.0.2.15
	ips, err := parseA(resp, 7, "waxmpp.local.")
	if err != nil {
		t.Fatal(err)
	}
	if len(ips) != 1 || !ips[0].Equal(net.IPv4(10, 0, 2, 15)) {
		t.Errorf("ips %v", ips)
	}
	if _, err := parseA(resp, 8, "waxmpp.local"); err == nil {
		t.Error("wrong id accepted")
	}
	if _, err := parseA(resp, 7, "other.local"); err == nil {
		t.Error("an answer for another name accepted")
	}
	for n := range len(resp) {
		parseA(resp[:n], 7, "waxmpp.local") // never panics
	}
	loop := append([]byte(nil), resp...)
	loop[len(q)], loop[len(q)+1] = 0xc0, byte(len(q)) // a pointer to itself
	if _, err := parseA(loop, 7, "waxmpp.local"); err == nil {
		t.Error("a name pointer loop accepted")
	}
}
