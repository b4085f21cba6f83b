#!/usr/bin/env python3
"""Schema check of deploy/spinkube: every document of every manifest that
kustomization.yaml lists (and the example secret) against its published
schema. Kubernetes kinds use kubernetes-validate's schemas for
KUBERNETES_VERSION, strict (unknown fields fail). SpinApp uses
schema/spinapp-v1alpha1.json, a transcription of spin-operator's CRD (see
the README there). Prints one line per document and exits 1 on any error.

usage: validate-spinkube.py [DIR]   (default: deploy/spinkube beside this script)
"""
import json
import pathlib
import sys
import tomllib

import jsonschema
import kubernetes_validate
import yaml

KUBERNETES_VERSION = "1.31.0"


def documents(directory):
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
    files = list(kustomization.get("resources", [])) + ["secret.example.yaml"]
    for name in files:
        path = directory / name
        if not path.exists():
            yield name, None, f"listed in kustomization.yaml but missing"
            continue
        for i, doc in enumerate(yaml.safe_load_all(path.read_text())):
            if doc is not None:
                yield f"{name}[{i}]", doc, None


def references(docs, manifest):
    """What a schema cannot see: every SpinApp variable is one spin.toml
    declares, and every secretKeyRef / configMapKeyRef (anywhere) names a
    Secret / ConfigMap of these manifests and a key it holds."""
    declared = set(tomllib.loads(manifest.read_text()).get("variables", {}))
    holds = {}
    for _, doc, _ in docs:
        if doc and doc.get("kind") in ("Secret", "ConfigMap"):
            keys = set(doc.get("stringData", {})) | set(doc.get("data", {}))
            holds[(doc["kind"], doc["metadata"]["name"])] = keys
    problems = []

    def walk(where, node):
        if isinstance(node, dict):
            for ref, kind in (("secretKeyRef", "Secret"), ("configMapKeyRef", "ConfigMap")):
                if ref in node:
                    name, key = node[ref].get("name"), node[ref].get("key")
                    if key not in holds.get((kind, name), set()):
                        problems.append(f"{where}: {ref} {name}/{key}: no {kind} {name!r} with key {key!r} in these manifests")
            for k, v in node.items():
                walk(f"{where}.{k}", v)
        elif isinstance(node, list):
            for i, v in enumerate(node):
                walk(f"{where}[{i}]", v)

    for where, doc, _ in docs:
        if not doc:
            continue
        walk(where, doc)
        if doc.get("kind") == "SpinApp":
            for v in doc.get("spec", {}).get("variables", []):
                if v.get("name") not in declared:
                    problems.append(f"{where}: variable {v.get('name')!r} is not declared in spin.toml [variables]")
    return problems


def main():
    here = pathlib.Path(__file__).resolve().parent
    directory = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else here.parent / "deploy" / "spinkube"
    spinapp = jsonschema.Draft202012Validator(json.loads((directory / "schema" / "spinapp-v1alpha1.json").read_text()))
    failures, checked = 0, 0
    for where, doc, problem in documents(directory):
        errors = [problem] if problem else []
        if doc is not None:
            kind = f"{doc.get('apiVersion')}/{doc.get('kind')}"
            if doc.get("kind") == "SpinApp":
                errors += [f"{'.'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}" for e in spinapp.iter_errors(doc)]
            else:
                try:
                    kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
                except kubernetes_validate.ValidationError as e:
                    errors.append(f"{'.'.join(map(str, e.path)) or '(root)'}: {e.message}")
                except kubernetes_validate.SchemaNotFoundError as e:
                    errors.append(f"no schema for {kind} in Kubernetes {KUBERNETES_VERSION}: {e}")
        else:
            kind = "?"
        checked += 1
        if errors:
            failures += 1
            for e in errors:
                print(f"FAIL {where} {kind}: {e}")
        else:
            print(f"ok   {where} {kind}")
    manifest = here.parent / "spin.toml"
    for p in references(list(documents(directory)), manifest):
        failures += 1
        print(f"FAIL {p}")
    print(f"{checked} documents, {failures} failing (Kubernetes {KUBERNETES_VERSION}, SpinApp v1alpha1)")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
