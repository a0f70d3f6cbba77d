// plugin.cc: a C++ library a C program dlopens -- its operators, containers
// and exceptions must all run on btd.
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

extern "C" __attribute__((visibility("default"))) long plugin_work(int n)
{
	std::map<std::string, std::vector<int>> m;

	for (int i = 0; i < n; i++)
		m["key" + std::to_string(i % 97)].push_back(i);
	long sum = 0;

	for (auto &kv : m)
		for (int v : kv.second)
			sum += v;
	try {
		throw std::runtime_error(std::string(200, 'x')); // allocates the exception
	} catch (const std::exception &e) {
		sum += static_cast<long>(std::string(e.what()).size());
	}
	auto shared = std::make_shared<std::vector<double>>(1000, 1.5);
	return sum + static_cast<long>(shared->size());
}
