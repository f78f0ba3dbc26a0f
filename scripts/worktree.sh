#!/usr/bin/env bash
# Make a git worktree whose code is what `import durable` loads, without reinstalling:
#   scripts/worktree.sh NAME  -> /work/wt-NAME on branch NAME; then
#   cd /work/wt-NAME && export PYTHONPATH=/work/wt-NAME/.pyroot
set -euo pipefail
name=$1
root=$(git rev-parse --show-toplevel)
dir=$(dirname "$root")/wt-$name
git -C "$root" worktree add -q "$dir" -b "$name"
cd "$dir"
mkdir -p .pyroot
ln -s ../sdk .pyroot/durable
ln -s ../devtool sdk/devtool
ln -s ../dashboard sdk/dashboard
ln -s ../templates sdk/templates
echo "$dir"
