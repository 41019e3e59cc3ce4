package attestation

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"os/user"
	"runtime"
	"time"

	"github.com/seal-dev/seal/pkg/fault"
)

// LocalBuildType is the build type of provenance made with --from local. No
// build platform stands behind it: the machine, user and directory it names
// are what the person running seal says they are, and its builder id has the
// local: scheme so that no policy mistakes it for a hosted builder. It is for
// demos, air-gapped builds and tests; a policy that wants CI provenance must
// require a build type such as GitHubWorkflowBuildType.
const LocalBuildType = "https://seal.dev/buildtypes/local/v1"

// LocalBuild describes a build on the local machine.
type LocalBuild struct {
	Hostname string
	User     string
	// WorkingDirectory is where the build was started (the build context, as
	// far as seal can tell).
	WorkingDirectory string
	OS, Arch         string
	InvocationID     string
	StartedOn        time.Time
}

// LocalBuildFromHost describes the current process: host name, user, working
// directory, platform, a random invocation id and the current time.
func LocalBuildFromHost() (LocalBuild, error) {
	b := LocalBuild{OS: runtime.GOOS, Arch: runtime.GOARCH, StartedOn: time.Now().UTC()}
	var err error
	if b.Hostname, err = os.Hostname(); err != nil {
		return b, fmt.Errorf("local provenance: host name: %w", err)
	}
	if u, err := user.Current(); err == nil {
		b.User = u.Username
	} else {
		b.User = os.Getenv("USER")
	}
	if b.WorkingDirectory, err = os.Getwd(); err != nil {
		return b, fmt.Errorf("local provenance: working directory: %w", err)
	}
	id := make([]byte, 16)
	if _, err := rand.Read(id); err != nil {
		return b, err
	}
	b.InvocationID = hex.EncodeToString(id)
	return b, nil
}

type localProvenance struct {
	BuildDefinition struct {
		BuildType          string `json:"buildType"`
		ExternalParameters struct {
			WorkingDirectory string `json:"workingDirectory"`
		} `json:"externalParameters"`
		InternalParameters struct {
			Host struct {
				Name string `json:"name"`
				User string `json:"user,omitempty"`
				OS   string `json:"os"`
				Arch string `json:"arch"`
			} `json:"host"`
		} `json:"internalParameters"`
	} `json:"buildDefinition"`
	RunDetails struct {
		Builder struct {
			ID string `json:"id"`
		} `json:"builder"`
		Metadata struct {
			InvocationID string `json:"invocationId"`
			StartedOn    string `json:"startedOn"`
		} `json:"metadata"`
	} `json:"runDetails"`
}

// GenerateLocal builds an SLSA v1 predicate of LocalBuildType for b. The
// builder id is local://USER@HOST. With subjects, the result is a complete
// in-toto Statement v1 around the predicate.
func GenerateLocal(b LocalBuild, subjects ...Subject) ([]byte, error) {
	if b.Hostname == "" || b.WorkingDirectory == "" || b.InvocationID == "" || b.StartedOn.IsZero() {
		return nil, fault.Inputf("local provenance: host name, working directory, invocation id and start time are required")
	}
	var p localProvenance
	p.BuildDefinition.BuildType = LocalBuildType
	p.BuildDefinition.ExternalParameters.WorkingDirectory = b.WorkingDirectory
	h := &p.BuildDefinition.InternalParameters.Host
	h.Name, h.User, h.OS, h.Arch = b.Hostname, b.User, b.OS, b.Arch
	builder := url.URL{Scheme: "local", Host: b.Hostname}
	if b.User != "" {
		builder.User = url.User(b.User)
	}
	p.RunDetails.Builder.ID = builder.String()
	p.RunDetails.Metadata.InvocationID = b.InvocationID
	p.RunDetails.Metadata.StartedOn = b.StartedOn.UTC().Format(time.RFC3339Nano)
	pred, err := marshal(p)
	if err != nil {
		return nil, err
	}
	return withSubjects(pred, subjects)
}
