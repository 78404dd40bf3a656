# The README's two commands:
#   make run   install what is missing, build, start keysvc + archived
#   make test  install what is missing, build with sanitizers, run ctest
JOBS ?= $(shell nproc)

.PHONY: run test deps build build-test bench bench-search clean

deps:
	@scripts/deps.sh

build: deps
	cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	cmake --build build -j $(JOBS)

run: build
	scripts/run.sh

build-test: deps
	cmake -S . -B build-test -DCMAKE_BUILD_TYPE=Debug -DWERROR=ON \
	    -DSANITIZE=address,undefined >/dev/null
	cmake --build build-test -j $(JOBS)

test: build-test
	cd build-test && ctest --output-on-failure -j 2

bench: build
	bench/run.sh

# the search index against notmuch (long: N=200000 takes about an hour on
# 2 cores); not part of `make bench`
N ?= 200000
bench-search: build
	bench/search.sh build $(N)

clean:
	rm -rf build build-test
