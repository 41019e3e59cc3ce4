package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/seal-dev/seal/internal/demo"
	"github.com/seal-dev/seal/pkg/fault"
)

func init() { register(newDemoCmd) }

func newDemoCmd(g *Globals) *cobra.Command {
	var keep bool
	cmd := &cobra.Command{
		Use:   "demo [--keep]",
		Short: "Run the whole release flow on embedded registries, with no other infrastructure",
		Long: `Starts two embedded registries on loopback ("staging" and "prime") and runs a release of
two components, server and server-agent, each built for two platforms as BuildKit pushes them (an
index with the image and its SLSA provenance): index create → sign --recursive → attest
--from-buildkit → copy to prime behind the policy gate → verify at prime with a policy whose
exception covers server-agent (built by the server repository). An unsigned image is stopped by
the gate. Ends with a verdict table; exit 0 when everything went as it should.`,
		Example: "  seal demo\n  seal demo --keep   # keep the registries running to explore them",
		Args:    usageArgs(cobra.NoArgs),
	}
	out := outputFlag(cmd)
	cmd.Flags().BoolVar(&keep, "keep", false, "keep the registries running (until interrupted) and print commands to explore them")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := checkOutput(*out); err != nil {
			return err
		}
		dir, err := os.MkdirTemp("", "seal-demo-")
		if err != nil {
			return fault.Wrap(fault.Operational, err)
		}
		if !keep {
			defer os.RemoveAll(dir)
		}
		start := time.Now()
		steps := g.Stdout
		if *out == "json" {
			steps = g.Stderr
		}
		d, err := demo.Run(cmd.Context(), demo.Options{Dir: dir, Step: func(line string) {
			fmt.Fprintf(steps, "==> %s\n", line)
		}})
		if err != nil {
			return err
		}
		defer d.Close(context.Background())
		if err := render(g.Stdout, *out, d.Report, func(w io.Writer) error {
			return renderDemo(w, d.Report, time.Since(start))
		}); err != nil {
			return err
		}
		if keep {
			fmt.Fprint(g.Stderr, exploreHelp(d))
			<-cmd.Context().Done()
		}
		if !d.Report.Passed {
			return fault.Verificationf("demo: the release did not verify as it should (see the table)")
		}
		return nil
	}
	return cmd
}

func renderDemo(w io.Writer, r *demo.Report, took time.Duration) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "\nIMAGE\tDIGEST\tPLATFORMS\tSIGNATURES\tATTESTATIONS\tRULE\tEXCEPTION\tVERDICT")
	rows := append(append([]demo.Row(nil), r.Rows...), r.Rejected)
	for _, row := range rows {
		verdict := "PASS"
		if !row.Passed {
			verdict = "REJECTED: " + row.Reason
		}
		exc := row.Exception
		if exc == "" {
			exc = "-"
		}
		rule := row.Rule
		if rule == "" {
			rule = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%s\t%s\t%s\n", row.Image, shortDigest(row.Digest),
			strings.Join(row.Platforms, ","), row.Signatures, row.Attestations, rule, exc, verdict)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	verdict := "PASS: the release verifies at prime, and the unsigned image was stopped"
	if !r.Passed {
		verdict = "FAIL: the flow did not end as it should"
	}
	_, err := fmt.Fprintf(w, "\n%s (%.1fs)\n", verdict, took.Seconds())
	return err
}

func shortDigest(d string) string {
	if len(d) > len("sha256:")+12 {
		return d[:len("sha256:")+12] + "…"
	}
	return d
}

func exploreHelp(d *demo.Demo) string {
	s, p := d.Staging.Addr(), d.Prime.Addr()
	return fmt.Sprintf(`
The registries keep running until you press Ctrl-C. Explore them:
  seal inspect %[2]s/example/server:v1.0.0
  seal verify --policy %[3]s %[2]s/example/server:v1.0.0 %[2]s/example/server-agent:v1.0.0
  seal verify --key %[4]s %[1]s/example/server-debug:v1.0.0      # the unsigned image: rejected
  crane ls %[2]s/example/server          # (crane: go install github.com/google/go-containerregistry/cmd/crane@v0.22.1)
  crane manifest %[2]s/example/server:v1.0.0
Files (policy, release.pub) are in %[5]s
`, s, p, d.Policy, d.PublicKey, d.Dir)
}
