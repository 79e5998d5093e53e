package boottest

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"strings"
)

// The boot test sends mDNS queries from inside the guest (QEMU's
// restricted networking carries no multicast and no UDP from the guest)
// and parses the answers here.

// buildQuery makes a DNS query message for one name and type, class IN.
func buildQuery(id uint16, name string, qtype uint16) ([]byte, error) {
	msg := make([]byte, 12, 64)
	binary.BigEndian.PutUint16(msg[0:], id)
	binary.BigEndian.PutUint16(msg[4:], 1) // QDCOUNT
	for _, label := range strings.Split(strings.TrimSuffix(name, "."), ".") {
		if label == "" || len(label) > 63 {
			return nil, fmt.Errorf("bad name %q", name)
		}
		msg = append(msg, byte(len(label)))
		msg = append(msg, label...)
	}
	msg = append(msg, 0)
	msg = binary.BigEndian.AppendUint16(msg, qtype)
	msg = binary.BigEndian.AppendUint16(msg, 1) // IN
	return msg, nil
}

// parseA returns the A records for name in a DNS response.
func parseA(msg []byte, id uint16, name string) ([]net.IP, error) {
	if len(msg) < 12 {
		return nil, errors.New("short DNS message")
	}
	if binary.BigEndian.Uint16(msg) != id {
		return nil, errors.New("DNS answer to another query")
	}
	if msg[2]&0x80 == 0 {
		return nil, errors.New("DNS message is not a response")
	}
	qd := int(binary.BigEndian.Uint16(msg[4:]))
	an := int(binary.BigEndian.Uint16(msg[6:]))
	off := 12
	for range qd {
		_, n, err := readName(msg, off)
		if err != nil {
			return nil, err
		}
		off = n + 4
	}
	var ips []net.IP
	for range an {
		rname, n, err := readName(msg, off)
		if err != nil {
			return nil, err
		}
		if n+10 > len(msg) {
			return nil, errors.New("truncated DNS record")
		}
		typ := binary.BigEndian.Uint16(msg[n:])
		class := binary.BigEndian.Uint16(msg[n+2:]) &^ 0x8000 // mDNS cache-flush bit
		rdlen := int(binary.BigEndian.Uint16(msg[n+8:]))
		rdata := n + 10
		if rdata+rdlen > len(msg) {
			return nil, errors.New("truncated DNS record data")
		}
		if typ == 1 && class == 1 && rdlen == 4 && strings.EqualFold(rname, strings.TrimSuffix(name, ".")) {
			ips = append(ips, net.IP(append([]byte(nil), msg[rdata:rdata+4]...)))
		}
		off = rdata + rdlen
	}
	if len(ips) == 0 {
		return nil, fmt.Errorf("no A record for %s in the answer", name)
	}
	return ips, nil
}

// readName reads a possibly compressed name at off; it returns the name
// and the offset after it.
func readName(msg []byte, off int) (string, int, error) {
	var labels []string
	end := -1
	for hops := 0; ; hops++ {
		if off >= len(msg) || hops > 64 {
			return "", 0, errors.New("bad DNS name")
		}
		l := int(msg[off])
		switch {
		case l == 0:
			if end < 0 {
				end = off + 1
			}
			return strings.Join(labels, "."), end, nil
		case l&0xc0 == 0xc0:
			if off+1 >= len(msg) {
				return "", 0, errors.New("bad DNS name pointer")
			}
			if end < 0 {
				end = off + 2
			}
			off = int(binary.BigEndian.Uint16(msg[off:]) & 0x3fff)
		case l&0xc0 != 0:
			return "", 0, errors.New("bad DNS label")
		default:
			if off+1+l > len(msg) {
				return "", 0, errors.New("truncated DNS label")
			}
			labels = append(labels, string(msg[off+1:off+1+l]))
			off += 1 + l
		}
	}
}
