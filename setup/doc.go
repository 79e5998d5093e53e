// Package setup is waxmpp's first-run setup: one state machine (Flow) that
// both front ends drive, the terminal one (setup/term, `sudo waxmpp setup`)
// and the web page (setup/web, `waxmpp setup --web`), and what the flow
// changes on the machine. `waxmpp doctor` is setup/doctor.
//
// # The steps
//
//  1. StepOwner: the owner's XMPP address. Checked: a bare JID, and its
//     domain exists in DNS (an _xmpp-client or _xmpps-client SRV record, or
//     an address). An xmpp: URI pasted from an app is accepted.
//  2. StepBot: the bot account. Either one the owner has (address and
//     password, tried for real: the bridge's own login, SRV and verified
//     TLS included), or one setup creates by in-band registration
//     (XEP-0077) on the owner's server or another one the owner names,
//     with a generated password (24 letters and digits from crypto/rand,
//     about 143 bits) that is never shown. A server that does not allow
//     registration is said so, with what to do instead; one that
//     registers only on its web page gives that page (XEP-0077 §5).
//  3. StepRegister, only when the server asks for more than a name and a
//     password: its other fields (an email address…) and a CAPTCHA
//     (XEP-0158), whose image the web page shows and whose web address the
//     terminal prints. A wrong answer fetches a new CAPTCHA.
//  4. StepSubscribe: the bot asks the owner for a presence subscription
//     (and pre-approves the owner's), and the flow waits until the owner
//     accepts it in their app; the owner may skip (the request stays in
//     their app; the bridge asks at its first login if none is pending, and
//     never again after that). Already accepted: the step passes at once.
//  5. StepWhatsApp: linking, by QR code (each code as WhatsApp rotates them,
//     with the time left) or by the 8-character code for the phone number.
//     An already linked state file passes at once; skipping is possible
//     (link later with /pair).
//  6. Finish writes everything, then StepDone says what to do next.
//
// On a configured system the flow starts at StepMenu: it shows what is
// configured, and only what the owner asks for is changed (the owner's
// address, the bot account, the WhatsApp link); each goes back to the menu,
// and Finish writes the result.
//
// # What Finish writes, and where
//
// Nothing is written before Finish: leaving the flow at any step (Ctrl-C)
// leaves the previous configuration as it was. Finish writes
//
//   - the bot's password as the systemd credential
//     /etc/credstore/waxmpp.password (root, 0600; the unit's
//     LoadCredential=waxmpp.password hands it to the service), or, when the
//     existing config names a password_file, into that file (0600, owned
//     by the service's user, who must read it);
//   - /etc/waxmpp/config.toml, root:waxmpp 0640, through a temporary file
//     that gets its owner and mode before it is renamed over the old one;
//     a re-run keeps every other setting of the old file;
//   - the state file's directory (/var/lib/waxmpp) given to the service's
//     user when linking created files there as root;
//
// then enables and (re)starts waxmpp.service (systemctl; Type=notify, so
// the start returns once the bridge is up or has failed) and removes the
// web page's setup code.
//
// # The web page's setup code
//
// The SD image makes a code at first boot unless waxmpp.txt gives one
// (image/README.md): /var/lib/waxmpp/setup-code (one line, 0600, the
// waxmpp user's), shown on the console and copied to the boot partition
// (waxmpp-setup-code.txt). `waxmpp setup --web` reads that file, or makes a
// code of its own and prints it when there is none. Codes compare ignoring
// case, spaces and dashes. The page removes the file when setup is done.
//
// # Privileges
//
// Finish needs root: the config is root's, the credential store is root's,
// and systemctl starts the service. The web page is therefore served by
// `waxmpp setup --web` (as root, from waxmpp-setup.service on the image),
// not by the sandboxed service: waxmpp.service runs as the waxmpp user with
// no capabilities, PrivateUsers=yes (no port 80) and a read-only /etc.
package setup
