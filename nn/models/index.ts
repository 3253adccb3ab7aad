// The model zoo as one namespace: models.resnet18 / resnet34 / resnet50 / mobilenetV2 (torchvision's architectures
// and keys) and the CIFAR-style models.resnet20 / resnet56.

export { resnet18, resnet34, resnet50, ResNet, BasicBlock, Bottleneck, type ResNetOptions } from './resnet.js';
export { resnet20, resnet56, CifarResNet, type CifarResNetOptions } from './cifar-resnet.js';
export { mobilenetV2, MobileNetV2, InvertedResidual, makeDivisible, type MobileNetV2Options } from './mobilenet-v2.js';
