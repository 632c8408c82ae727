// Which config keys the chosen model and dataset read: a key that would change nothing is refused, not
// silently ignored.
#pragma once

#include <pdeq/config/config.h>

#include <string>
#include <vector>

namespace pdeq::experiment {

/// Refuses (config::ConfigError) a config that sets a key its model or dataset does not read, e.g.
/// model.layers for resnet20, model.tv.enabled or model.stable for pde_gcn, quant.per_channel for a graph
/// model, data.edge_weights for cifar10. "Sets" means: differs from the default (a resolved config.json
/// holds every key). The message names where the value came from (the file or the `--set`), the key, and
/// the models or datasets that read it.
void check_keys_used(const config::Config& config);

/// Keys that are read only while a switch of the same config is on, set while it is off: model.tv.* without
/// model.tv.enabled, model.transpose without model.stable, quant.schedule.* without quant.schedule.enabled,
/// train.scale_group.* / layer_group.* / distillation.* without their `enabled`. One message per key, naming it and the
/// switch. Warnings, not errors: a sweep toggles a switch over a shared base config.
std::vector<std::string> keys_waiting_for_a_switch(const config::Config& config);

}  // namespace pdeq::experiment
