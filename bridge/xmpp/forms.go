package xmpp

// IQ payloads of the services the bot uses: roster (RFC 6121) and HTTP
// upload slots (XEP-0363).

import (
	"encoding/xml"
	"strconv"
)

// RosterItem is one roster entry (RFC 6121 §2.1.2).
type RosterItem struct {
	JID          string   `xml:"jid,attr"`
	Name         string   `xml:"name,attr,omitempty"`
	Subscription string   `xml:"subscription,attr,omitempty"` // none, to, from, both, remove
	Ask          string   `xml:"ask,attr,omitempty"`
	Groups       []string `xml:"group"`
}

// Roster is the payload of a roster get result or push.
type Roster struct {
	XMLName xml.Name     `xml:"jabber:iq:roster query"`
	Ver     string       `xml:"ver,attr,omitempty"`
	Items   []RosterItem `xml:"item"`
}

// RosterGet asks the server for the bot's roster.
func RosterGet(id string) IQ {
	var w writer
	w.empty("query", NSRoster)
	return IQ{ID: id, Type: "get", Payload: Inner{w.bytes()}}
}

// RosterSet adds, changes or (Subscription "remove") removes one item.
func RosterSet(id string, item RosterItem) IQ {
	var w writer
	w.open("query", NSRoster)
	w.open("item", "", "jid", item.JID, "name", item.Name, "subscription", item.Subscription)
	for _, g := range item.Groups {
		w.elem("group", "", g)
	}
	w.close()
	w.close()
	return IQ{ID: id, Type: "set", Payload: Inner{w.bytes()}}
}

// UploadRequest asks the upload service for an XEP-0363 slot.
func UploadRequest(id, service, filename string, size int64, contentType string) IQ {
	var w writer
	w.empty("request", NSUpload, "filename", filename, "size", strconv.FormatInt(size, 10), "content-type", contentType)
	return IQ{ID: id, To: service, Type: "get", Payload: Inner{w.bytes()}}
}

// UploadSlot is the payload of an XEP-0363 slot result.
type UploadSlot struct {
	XMLName xml.Name `xml:"urn:xmpp:http:upload:0 slot"`
	Put     struct {
		URL     string `xml:"url,attr"`
		Headers []struct {
			Name  string `xml:"name,attr"`
			Value string `xml:",chardata"`
		} `xml:"header"`
	} `xml:"put"`
	Get struct {
		URL string `xml:"url,attr"`
	} `xml:"get"`
}
