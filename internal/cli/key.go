package cli

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/seal-dev/seal/pkg/fault"
	"github.com/seal-dev/seal/pkg/signing"
)

func init() { register(newKeyCmd) }

func newKeyCmd(g *Globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "key",
		Short: "Manage signing keys (cosign's file format)",
		Args:  usageArgs(cobra.NoArgs),
	}
	cmd.AddCommand(newKeyGenerateCmd(g))
	return cmd
}

// keyFiles is what `seal key generate` reports.
type keyFiles struct {
	PrivateKey string `json:"privateKey"`
	PublicKey  string `json:"publicKey"`
}

func newKeyGenerateCmd(g *Globals) *cobra.Command {
	var (
		prefix string
		force  bool
	)
	cmd := &cobra.Command{
		Use:   "generate [--output-prefix PATH] [--force]",
		Short: "Generate a key pair in cosign's format (PATH.key, PATH.pub)",
		Long: `Writes PATH.key (mode 0600: ECDSA P-256, PKCS#8 encrypted with scrypt + nacl/secretbox,
PEM "ENCRYPTED SIGSTORE PRIVATE KEY") and PATH.pub (PKIX PEM), the files 'cosign
generate-key-pair' writes; cosign reads them and seal reads cosign's.

The password comes from SEAL_PASSWORD, else COSIGN_PASSWORD (an empty value is an
empty password, as for cosign), else a prompt when stdin is a terminal.`,
		Example: "  SEAL_PASSWORD=… seal key generate --output-prefix release   # release.key, release.pub",
		Args:    usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			format := cmd.Flag("output").Value.String()
			if err := checkOutput(format); err != nil {
				return err
			}
			files := keyFiles{PrivateKey: prefix + ".key", PublicKey: prefix + ".pub"}
			if !force {
				for _, p := range []string{files.PrivateKey, files.PublicKey} {
					if _, err := os.Lstat(p); err == nil {
						return fault.Inputf("%s already exists (use --force to overwrite)", p)
					}
				}
			}
			password, err := readPassword(g, true)
			if err != nil {
				return err
			}
			priv, pub, err := signing.GenerateKeyPair(password)
			clear(password)
			if err != nil {
				return err
			}
			if err := writeFileAtomic(files.PrivateKey, priv, 0o600, force); err != nil {
				return err
			}
			if err := writeFileAtomic(files.PublicKey, pub, 0o644, force); err != nil {
				return err
			}
			return render(g.Stdout, format, files, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "Private key written to %s\nPublic key written to %s\n", files.PrivateKey, files.PublicKey)
				return err
			})
		},
	}
	cmd.Flags().StringVar(&prefix, "output-prefix", "cosign", "write PATH.key and PATH.pub")
	cmd.Flags().BoolVar(&force, "force", false, "overwrite existing key files")
	outputFlag(cmd)
	return cmd
}

// writeFileAtomic writes data to a temporary file in path's directory and
// moves it into place, so that a crash never leaves a half-written key.
// Without overwrite the move is a hard link, which fails if path appeared
// in the meantime instead of replacing it.
func writeFileAtomic(path string, data []byte, mode os.FileMode, overwrite bool) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, ".seal-"+filepath.Base(path)+"-*")
	if err != nil {
		return fault.Inputf("write %s: %v", path, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			os.Remove(tmp)
		}
	}()
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return fault.Inputf("write %s: %v", path, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fault.Inputf("write %s: %v", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fault.Inputf("write %s: %v", path, err)
	}
	if err := f.Close(); err != nil {
		return fault.Inputf("write %s: %v", path, err)
	}
	if overwrite {
		if err := os.Rename(tmp, path); err != nil {
			return fault.Inputf("write %s: %v", path, err)
		}
		return nil
	}
	if err := os.Link(tmp, path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fault.Inputf("%s already exists (use --force to overwrite)", path)
		}
		return fault.Inputf("write %s: %v", path, err)
	}
	os.Remove(tmp)
	return nil
}

// readPassword gets the key password: SEAL_PASSWORD, else COSIGN_PASSWORD
// (set but empty means an empty password, as cosign reads it), else a
// prompt on the terminal — twice when confirm, for a new key. Without a
// terminal and without the variables it is an input error: reading a
// password from a pipe silently is how secrets end up in shell histories.
func readPassword(g *Globals, confirm bool) ([]byte, error) {
	for _, v := range []string{"SEAL_PASSWORD", "COSIGN_PASSWORD"} {
		if pw, ok := os.LookupEnv(v); ok {
			return []byte(pw), nil
		}
	}
	f, ok := g.Stdin.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return nil, fault.Inputf("no password: set SEAL_PASSWORD (or COSIGN_PASSWORD), or run on a terminal")
	}
	fmt.Fprint(g.Stderr, "Enter password for private key: ")
	pw, err := term.ReadPassword(int(f.Fd()))
	fmt.Fprintln(g.Stderr)
	if err != nil {
		return nil, fault.Inputf("read password: %v", err)
	}
	if !confirm {
		return pw, nil
	}
	fmt.Fprint(g.Stderr, "Enter password for private key again: ")
	again, err := term.ReadPassword(int(f.Fd()))
	fmt.Fprintln(g.Stderr)
	if err != nil {
		return nil, fault.Inputf("read password: %v", err)
	}
	defer clear(again)
	if !bytes.Equal(pw, again) {
		clear(pw)
		return nil, fault.Inputf("passwords do not match")
	}
	return pw, nil
}

// loadKeySigner reads a cosign private key file and asks for its password.
func loadKeySigner(g *Globals, path string, svc signing.Services) (*signing.KeySigner, error) {
	pemBytes, err := os.ReadFile(path)
	if err != nil {
		return nil, fault.Inputf("key %s: %v", path, err)
	}
	password, err := readPassword(g, false)
	if err != nil {
		return nil, err
	}
	key, err := signing.LoadPrivateKey(pemBytes, password)
	clear(password)
	if err != nil {
		return nil, fmt.Errorf("key %s: %w", path, err)
	}
	return signing.NewKeySigner(key, svc)
}
