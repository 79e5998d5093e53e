package main

import (
	"context"
	"flag"
)

// doctorFlags are doctor's flags.
type doctorFlags struct {
	json bool
}

func (d *doctorFlags) define(fs *flag.FlagSet) {
	fs.BoolVar(&d.json, "json", false, "print the findings as JSON, for scripts")
}

func (m *Main) runDoctor(ctx context.Context) error {
	return nil
}
