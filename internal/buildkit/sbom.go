package buildkit

import (
	"crypto/sha1" //nolint:gosec // SPDX 2.3 makes a SHA1 file checksum mandatory
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strings"
)

// A small SPDX 2.3 document in the JSON form BuildKit's SBOM scanner writes:
// the image as the described package, containing /hello.txt.

type spdxDocument struct {
	SPDXVersion       string             `json:"spdxVersion"`
	DataLicense       string             `json:"dataLicense"`
	SPDXID            string             `json:"SPDXID"`
	Name              string             `json:"name"`
	DocumentNamespace string             `json:"documentNamespace"`
	CreationInfo      spdxCreationInfo   `json:"creationInfo"`
	Packages          []spdxPackage      `json:"packages"`
	Files             []spdxFile         `json:"files"`
	Relationships     []spdxRelationship `json:"relationships"`
}

type spdxCreationInfo struct {
	Creators []string `json:"creators"`
	Created  string   `json:"created"`
}

type spdxPackage struct {
	Name                  string `json:"name"`
	SPDXID                string `json:"SPDXID"`
	VersionInfo           string `json:"versionInfo,omitempty"`
	Supplier              string `json:"supplier"`
	DownloadLocation      string `json:"downloadLocation"`
	FilesAnalyzed         bool   `json:"filesAnalyzed"`
	LicenseConcluded      string `json:"licenseConcluded"`
	LicenseDeclared       string `json:"licenseDeclared"`
	CopyrightText         string `json:"copyrightText"`
	PrimaryPackagePurpose string `json:"primaryPackagePurpose"`
}

type spdxFile struct {
	FileName         string         `json:"fileName"`
	SPDXID           string         `json:"SPDXID"`
	FileTypes        []string       `json:"fileTypes"`
	Checksums        []spdxChecksum `json:"checksums"`
	LicenseConcluded string         `json:"licenseConcluded"`
	CopyrightText    string         `json:"copyrightText"`
}

type spdxChecksum struct {
	Algorithm     string `json:"algorithm"`
	ChecksumValue string `json:"checksumValue"`
}

type spdxRelationship struct {
	SPDXElementID      string `json:"spdxElementId"`
	RelatedSPDXElement string `json:"relatedSpdxElement"`
	RelationshipType   string `json:"relationshipType"`
}

const spdxNoAssertion = "NOASSERTION"

func sbomStatement(o Options, subj []subject) ([]byte, error) {
	seed := buildSeed(o)
	ns := sha256.Sum256([]byte("spdx\x00" + seed))
	s1 := sha1.Sum(o.Content) //nolint:gosec // required by SPDX, not a security check
	s256 := sha256.Sum256(o.Content)
	tag, err := parseTag(o.Ref)
	if err != nil {
		return nil, err
	}
	pkgID := "SPDXRef-DocumentRoot-Image-" + spdxIDPart(o.Component)
	fileID := "SPDXRef-File-hello.txt"
	doc := spdxDocument{
		SPDXVersion:       "SPDX-2.3",
		DataLicense:       "CC0-1.0",
		SPDXID:            "SPDXRef-DOCUMENT",
		Name:              o.Component,
		DocumentNamespace: "https://spdx.org/spdxdocs/" + spdxIDPart(o.Component) + "-" + hex.EncodeToString(ns[:16]),
		CreationInfo: spdxCreationInfo{
			Creators: []string{"Tool: seal-buildkit-generator"},
			Created:  o.Created.Format("2006-01-02T15:04:05Z"),
		},
		Packages: []spdxPackage{{
			Name:                  o.Component,
			SPDXID:                pkgID,
			VersionInfo:           tag.TagStr(),
			Supplier:              spdxNoAssertion,
			DownloadLocation:      spdxNoAssertion,
			FilesAnalyzed:         false,
			LicenseConcluded:      spdxNoAssertion,
			LicenseDeclared:       spdxNoAssertion,
			CopyrightText:         spdxNoAssertion,
			PrimaryPackagePurpose: "CONTAINER",
		}},
		Files: []spdxFile{{
			FileName:  "/hello.txt",
			SPDXID:    fileID,
			FileTypes: []string{"TEXT"},
			Checksums: []spdxChecksum{
				{Algorithm: "SHA1", ChecksumValue: hex.EncodeToString(s1[:])},
				{Algorithm: "SHA256", ChecksumValue: hex.EncodeToString(s256[:])},
			},
			LicenseConcluded: spdxNoAssertion,
			CopyrightText:    spdxNoAssertion,
		}},
		Relationships: []spdxRelationship{
			{SPDXElementID: "SPDXRef-DOCUMENT", RelatedSPDXElement: pkgID, RelationshipType: "DESCRIBES"},
			{SPDXElementID: pkgID, RelatedSPDXElement: fileID, RelationshipType: "CONTAINS"},
		},
	}
	return json.Marshal(statement{
		Type:          StatementTypeV1,
		PredicateType: PredicateSPDX,
		Subject:       subj,
		Predicate:     doc,
	})
}

// spdxIDPart keeps what an SPDX identifier allows (letters, digits, '.' and
// '-') and turns anything else into '-'.
func spdxIDPart(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case 'a' <= r && r <= 'z', 'A' <= r && r <= 'Z', '0' <= r && r <= '9', r == '.', r == '-':
			return r
		}
		return '-'
	}, s)
}
