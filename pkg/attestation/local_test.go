package attestation

import (
	"os"
	"strings"
	"testing"
	"time"
)

func TestGenerateLocalGolden(t *testing.T) {
	b := LocalBuild{
		Hostname:         "build-7.example.internal",
		User:             "alice",
		WorkingDirectory: "/home/alice/src/fleet",
		OS:               "linux",
		Arch:             "amd64",
		InvocationID:     "0f3c9a7e5b1d4c2a8e6f0b9d7c5a3e1f",
		StartedOn:        time.Date(2026, 11, 25, 19, 41, 2, 118573392, time.FixedZone("CET", 3600)),
	}
	got, err := GenerateLocal(b)
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "local.provenance.json", got)
	checkWithInToto(t, got)

	p := decode(t, got)
	for _, tc := range []struct {
		path []string
		want string
	}{
		{[]string{"buildDefinition", "buildType"}, LocalBuildType},
		{[]string{"runDetails", "builder", "id"}, "local://alice@build-7.example.internal"},
		{[]string{"runDetails", "metadata", "startedOn"}, "2026-11-25T18:41:02.118573392Z"},
		{[]string{"buildDefinition", "externalParameters", "workingDirectory"}, "/home/alice/src/fleet"},
	} {
		if v := path(t, p, tc.path...); v != tc.want {
			t.Errorf("%s = %v, want %s", strings.Join(tc.path, "."), v, tc.want)
		}
	}

	_, err = GenerateLocal(LocalBuild{Hostname: "h"})
	wantInputError(t, err, "required")
}

func TestLocalBuildFromHost(t *testing.T) {
	b, err := LocalBuildFromHost()
	if err != nil {
		t.Fatal(err)
	}
	host, _ := os.Hostname()
	wd, _ := os.Getwd()
	if b.Hostname != host || b.WorkingDirectory != wd || len(b.InvocationID) != 32 || time.Since(b.StartedOn) > time.Minute {
		t.Errorf("LocalBuildFromHost() = %+v", b)
	}
	b2, _ := LocalBuildFromHost()
	if b2.InvocationID == b.InvocationID {
		t.Error("invocation ids repeat")
	}
	if _, err := GenerateLocal(b); err != nil {
		t.Errorf("GenerateLocal(host): %v", err)
	}
}
