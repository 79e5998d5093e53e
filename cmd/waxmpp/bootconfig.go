package main

import (
	"flag"
	"fmt"
	"syscall"

	"waxmpp/image/bootcfg"
)

const bootconfigAbout = `Apply waxmpp.txt, the settings file on the SD image's boot partition
(Wi-Fi, host name, SSH keys, setup code, a setup without the page), then
rewrite it with the applied lines as comments and the secrets removed.
Mistakes are printed and written to waxmpp-errors.txt beside it. The SD
image runs this early at every boot (waxmpp-bootconfig.service).`

// bootFlags are bootconfig's flags: where the system and the boot
// partition are (tests and image builds point them elsewhere).
type bootFlags struct {
	root, boot string
}

func (b *bootFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&b.root, "root", "/", "the system to change")
	fs.StringVar(&b.boot, "boot", "/boot/firmware", "the boot partition holding waxmpp.txt")
}

// bootconfig applies waxmpp.txt from the boot partition (package
// image/bootcfg). The SD image runs it early at every boot
// (waxmpp-bootconfig.service, output to the journal and the console).
// Mistakes in the file are printed, one line each, at the journal's error
// priority; they are no failure of the command.
func (m *Main) bootconfig() error {
	sys := &bootcfg.System{Root: m.Boot.root, Boot: m.Boot.boot}
	if m.Boot.root == "/" {
		sys.SetHostname = func(name string) error { return syscall.Sethostname([]byte(name)) }
	}
	res, err := sys.Run()
	if err != nil {
		return err
	}
	// Under systemd, "<3>" gives a line the journal's error priority.
	errPrefix := ""
	if m.Getenv("JOURNAL_STREAM") != "" {
		errPrefix = "<3>"
	}
	for _, d := range res.Done {
		fmt.Fprintf(m.Stdout, "waxmpp.txt: applied %s\n", d)
	}
	for _, p := range res.Problems {
		fmt.Fprintf(m.Stdout, "%swaxmpp.txt: %s\n", errPrefix, p)
	}
	if len(res.Problems) > 0 {
		fmt.Fprintf(m.Stdout, "%swaxmpp.txt: correct it on the boot partition (the list is also in %s there); it is read again at the next start\n", errPrefix, bootcfg.ErrorsName)
	}
	if res.SetupCode != "" {
		fmt.Fprintf(m.Stdout, "waxmpp setup: open http://%s.local/ and enter the setup code %s\n", res.Hostname, res.SetupCode)
	}
	return nil
}
