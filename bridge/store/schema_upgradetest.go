//go:build upgradetest

package store

import bolt "go.etcd.io/bbolt"

// A build with -tags upgradetest is the install test's "newer version"
// (packaging/installtest): it knows one migration more than the code it
// upgrades, so that the test sees a package upgrade migrate the state file
// as a real release's would. Never shipped.
func init() {
	migrations = append(migrations, func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists([]byte("upgradetest"))
		return err
	})
	SchemaVersion = len(migrations)
}
