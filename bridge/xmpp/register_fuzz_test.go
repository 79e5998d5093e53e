package xmpp

import (
	"strings"
	"testing"
)

// FuzzRegistrationForm: whatever a server sends as its registration form
// (legacy fields, data forms, media, Bits of Binary), parsing never panics,
// and what it yields can be submitted.
func FuzzRegistrationForm(f *testing.F) {
	for _, s := range []string{
		`<query xmlns='jabber:iq:register'><instructions>Choose</instructions><username/><password/></query>`,
		`<query xmlns='jabber:iq:register'><x xmlns='jabber:x:data' type='form'><field var='FORM_TYPE' type='hidden'><value>jabber:iq:register</value></field><field var='username' type='text-single'><required/></field><field var='email'><required/></field></x></query>`,
		`<query xmlns='jabber:iq:register'><x xmlns='jabber:x:data' type='form'><field var='ocr' label='Enter the text you see'><media xmlns='urn:xmpp:media-element' height='60' width='140'><uri type='image/png'>cid:sha1+aa@bob.xmpp.org</uri></media><required/></field></x><data xmlns='urn:xmpp:bob' cid='sha1+aa@bob.xmpp.org' type='image/png'>iVBORw0KGgo=</data></query>`,
		`<query xmlns='jabber:iq:register'><x xmlns='jabber:x:oob'><url>https://example.org/register</url></x></query>`,
		`<query xmlns='jabber:iq:register'/>`,
		`<nonsense`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r := &Registration{Domain: "example.org"}
		if err := r.parse(b); err != nil {
			return
		}
		_ = r.CaptchaURL()
		for _, fl := range r.Fields {
			if fl.Var == "" && fl.Type != "fixed" {
				t.Fatalf("a field without a name: %+v", fl)
			}
		}
		// What Submit would send is well-formed XML whatever the values.
		var w writer
		w.open("query", "jabber:iq:register")
		for _, fl := range r.Fields {
			if r.Form {
				w.open("field", "", "var", fl.Var)
				w.elem("value", "", strings.Repeat(fl.Value, 1))
				w.close()
			} else if legacyFields[fl.Var] {
				w.elem(fl.Var, "", fl.Value)
			}
		}
		w.close()
		if _, err := DecodeBytes(append(append([]byte("<iq type='set' id='x'>"), w.bytes()...), "</iq>"...)); err != nil {
			t.Fatalf("the submission does not parse: %v\n%s", err, w.bytes())
		}
	})
}
